"""The parity harness (``pivotal.runtime.parity``, ``pivotal parity``): identical runs report "identical" with equal
sha256 fingerprints; a perturbed trade list (another fee, a dropped bar, a shifted fill, a missed or moved trade) is
reported with its first divergence named exactly. Hand bars and hand trades give values checked by hand; the real
data tests (marked by the ``shared_data`` fixture) check the same on Binance BTC/USDT 1h."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.core.errors import UserInputError
from pivotal.core.trades import Trade, TradeList
from pivotal.data.candles import Candles
from pivotal.execution.backtest import backtest
from pivotal.runtime.node import trade_fingerprint
from pivotal.runtime.parity import (
    bar_divergence,
    compare_trades,
    implied_fee,
    load_trade_list,
    parity_report,
    run_parity,
)
from pivotal.services.backtest import CandleSource
from pivotal.services.run import PreparedRun, RunRequest, prepare

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
FEE = 0.001


def net(direction: int, entry: float, exit_: float, fee: float = FEE) -> float:
    gross = (exit_ - entry) / entry if direction > 0 else (entry - exit_) / entry
    return gross - fee * (1 + exit_ / entry)


def trade(entry_bar: int, entry: float, exit_bar: int, exit_: float, direction: int = 1, reason: str = "SIGNAL") -> Trade:
    return Trade(
        signal_bar=entry_bar - 1, direction=direction, level=math.nan, entry_bar=entry_bar, entry_time=T0 + entry_bar * H,
        entry_fill=entry, stop=math.nan, target=math.nan, exit_bar=exit_bar, exit_time=T0 + exit_bar * H,
        exit_reason=reason, exit_fill=exit_, net_return=net(direction, entry, exit_),
    )  # fmt: skip


REF = (trade(3, 11.0, 5, 10.0), trade(7, 12.0, 8, 11.0), trade(10, 100.0, 12, 110.0, -1))


def first(other: tuple[Trade, ...] | list[Trade]) -> tuple[str, str, dict]:
    report = parity_report({"backtest": REF, "paper": other})
    row = report.first_divergence("paper")
    assert row is not None and row.divergence is not None
    return row.divergence.kind, row.divergence.why, row.to_dict()


# --- hand trades --------------------------------------------------------------------------------------------------


def test_identical_lists_report_identical_with_their_fingerprint() -> None:
    report = parity_report({"backtest": REF, "replay": list(REF), "paper": REF})
    assert report.identical and report.status("replay") == report.status("paper") == "identical"
    assert report.fingerprints == (trade_fingerprint(REF),) * 3
    assert report.first_divergence("paper") is None
    data = report.to_dict()
    assert data["identical"] is True and [s["sha256"] for s in data["sides"]] == [trade_fingerprint(REF)] * 3
    assert "backtest vs paper: identical" in report.text()


def test_a_different_fee_is_named_with_the_fee_each_side_implies() -> None:
    other = tuple(replace(t, net_return=net(t.direction, t.entry_fill, t.exit_fill, 0.002)) for t in REF)
    kind, why, row = first(other)
    assert kind == "net return" and row["reference_index"] == row["other_index"] == 0
    assert "trade entered 2024-01-01 03:00: identical fills" in why
    assert "implied fee per side 0.001 vs 0.002" in why
    # by hand: long 11 -> 10, fee 0.1 % per side: -1/11 - 0.001 * (1 + 10/11)
    assert REF[0].net_return == pytest.approx(-0.0909090909 - 0.0019090909, abs=1e-10)
    assert implied_fee(REF[0]) == pytest.approx(0.001, abs=1e-15)
    report = parity_report({"backtest": REF, "paper": other})
    assert report.status("paper") == "same decisions, different fills" and not report.identical


def test_a_shifted_entry_fill_is_named_with_its_bar_and_both_prices() -> None:
    other = (REF[0], replace(REF[1], entry_fill=12.006), REF[2])
    kind, why, row = first(other)
    assert kind == "entry" and row["reference_index"] == 1
    assert why.startswith("trade entered 2024-01-01 07:00 (bar 7 vs 7): entry fill 12.0 in backtest vs 12.006 in paper")
    assert "+5.000 bp" in why
    assert row["divergence"]["fields"]["entry_fill"] == [12.0, 12.006]


def test_a_trade_missing_from_the_other_list_is_named() -> None:
    kind, why, row = first((REF[0], REF[2]))
    assert (kind, row["reference_index"], row["other_index"]) == ("missing trade", 1, None)
    assert why == "backtest trade 1 (LONG, entered 2024-01-01 07:00 at bar 7, fill 12.0, exit SIGNAL) has no trade in paper"


def test_an_extra_trade_is_named() -> None:
    extra = trade(9, 50.0, 9, 51.0)
    kind, why, row = first((*REF[:2], extra, REF[2]))
    assert (kind, row["other_index"]) == ("extra trade", 2)
    assert "paper trade 2 (LONG, entered 2024-01-01 09:00 at bar 9" in why


def test_a_trade_entered_one_bar_later_is_one_entry_time_divergence() -> None:
    moved = replace(REF[1], signal_bar=7, entry_bar=8, entry_time=T0 + 8 * H)
    rows = compare_trades(REF, (REF[0], moved, REF[2]), ("backtest", "paper"))
    assert [r.divergence.kind if r.divergence else "=" for r in rows] == ["=", "entry time", "="]
    why = rows[1].divergence.why if rows[1].divergence else ""
    assert why == (
        "LONG trade entered at bar 7 (2024-01-01 07:00, signal bar 6) in backtest, "
        "at bar 8 (2024-01-01 08:00, signal bar 7) in paper"
    )


def test_opposite_decision_and_a_different_exit() -> None:
    kind, why, _ = first((REF[0], REF[1], replace(REF[2], direction=1)))
    assert kind == "decision" and "backtest is SHORT, paper is LONG" in why
    kind, why, _ = first((replace(REF[0], exit_bar=6, exit_time=T0 + 6 * H, exit_reason="SL", exit_fill=9.5), *REF[1:]))
    assert kind == "exit"
    assert "backtest exits SIGNAL at 2024-01-01 05:00 (bar 5) for 10.0, paper exits SL at 2024-01-01 06:00 (bar 6) for 9.5" in why


def test_trade_lists_round_trip_through_csv_and_json(tmp_path: Path) -> None:
    for suffix in (".csv", ".json"):
        path = tmp_path / f"trades{suffix}"
        TradeList(REF).write(path)
        assert trade_fingerprint(load_trade_list(path).trades) == trade_fingerprint(REF)
    (tmp_path / "empty.csv").write_text("")
    assert len(load_trade_list(tmp_path / "empty.csv")) == 0
    (tmp_path / "bad.json").write_text(json.dumps([{"direction": 1}]))
    with pytest.raises(UserInputError, match=r"bad\.json: not a trade list \(.*missing column"):
        load_trade_list(tmp_path / "bad.json")
    with pytest.raises(UserInputError, match="unsupported trade list format"):
        load_trade_list(tmp_path / "trades.txt")


# --- hand bars through the backtest use case and the replay node ----------------------------------------------------

CLOSES = [10.0, 9.0, 11.0, 12.0, 10.0, 9.0, 12.0, 11.0, 13.0]  # SMA 1/2 cross: buy after down-then-up, sell after up-then-down


def hand_bars(drop_first: bool = False) -> Candles:
    close = np.array(CLOSES)
    open_ = np.concatenate(([10.0], close[:-1]))
    ts = T0 + np.arange(len(close), dtype=np.int64) * H
    columns = [ts, open_, np.maximum(open_, close) + 0.5, np.minimum(open_, close) - 0.5, close, np.ones(len(close))]
    if drop_first:
        columns = [c[1:] for c in columns]
    return Candles.from_columns(columns, exchange="binance", symbol="BTC/USDT", timeframe="1h")


def prepared(bars: Candles) -> PreparedRun:
    request = RunRequest("backtest", "sma_cross", CandleSource(), {"fast": 1, "slow": 2}, fee_rate=FEE, slippage=0.0)
    return PreparedRun(request, {"fast": 1, "slow": 2}, bars)


def test_hand_bars_backtest_equals_replay_with_hand_checked_trades() -> None:
    report = run_parity(prepared(hand_bars()))
    assert report.identical and report.counts[:2] == (2, 2)
    got = backtest("sma_cross", hand_bars(), params={"fast": 1, "slow": 2}, fee_rate=FEE, slippage=0.0).trades.trades
    # bar 2 closes up after a down bar: buy at bar 3's open (11); bar 4 closes down after an up bar: sell at bar 5's open (10)
    assert [(t.signal_bar, t.entry_bar, t.entry_fill, t.exit_bar, t.exit_fill) for t in got] == [
        (2, 3, 11.0, 5, 10.0),
        (6, 7, 12.0, 8, 11.0),
    ]
    assert got[0].net_return == net(1, 11.0, 10.0)
    assert report.fingerprints[0] == trade_fingerprint(got)


def test_a_dropped_bar_loses_the_first_trade_and_renumbers_the_rest() -> None:
    """Without bar 0 the SMA(2) has no previous value at bar 2, so the first cross is not seen; the second trade keeps
    its times and prices, one bar number lower."""
    dropped = backtest("sma_cross", hand_bars(True), params={"fast": 1, "slow": 2}, fee_rate=FEE, slippage=0.0)
    report = run_parity(prepared(hand_bars()), {"paper": dropped.trades.trades})
    rows = [r for r in report.diffs["paper"] if r.divergence is not None]
    assert [r.divergence.kind for r in rows if r.divergence] == ["missing trade", "bar numbering"]
    assert rows[0].divergence is not None and rows[0].divergence.why == (
        "backtest trade 0 (LONG, entered 2024-01-01 03:00 at bar 3, fill 11.0, exit SIGNAL) has no trade in paper"
    )
    assert rows[1].divergence is not None and rows[1].divergence.fields == {
        "signal_bar": (6, 5), "entry_bar": (7, 6), "exit_bar": (8, 7),
    }  # fmt: skip
    assert "one has a bar the other lacks (a dropped bar)" in rows[1].divergence.why
    assert report.status("replay") == "identical" and report.status("paper") == "different decisions"


# --- real data: pivotal parity on Binance BTC/USDT 1h ----------------------------------------------------------------


def cli_args(shared_data: Path, *extra: str) -> list[str]:
    return [
        "parity", "--strategy", "sma_cross", "-i", str(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet"),
        "-e", "binance", "-s", "BTC/USDT", "--start", "2023-01-01", "--end", "2023-04-01", *extra,
    ]  # fmt: skip


def test_cli_parity_on_real_data(shared_data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    same = runner.invoke(app, [*cli_args(shared_data), "--json"])
    assert same.exit_code == 0, same.output
    data = json.loads(same.output)
    assert data["identical"] and data["sides"][0]["sha256"] == data["sides"][1]["sha256"]
    # a paper list with a different fee and one with more slippage: the first divergence is the first trade
    bt_args = [a for a in cli_args(shared_data)[1:] if a not in ("-e", "binance", "-s", "BTC/USDT")]
    fee_file, slip_file = tmp_path / "fee.csv", tmp_path / "slip.json"
    assert runner.invoke(app, ["backtest", *bt_args, "--fee", "0.002", "--trades-out", str(fee_file)]).exit_code == 0
    assert runner.invoke(app, ["backtest", *bt_args, "--slippage", "0.001", "--trades-out", str(slip_file)]).exit_code == 0
    fee = runner.invoke(app, [*cli_args(shared_data), "--paper-trades", str(fee_file), "--report-out", str(tmp_path / "r.json")])
    assert fee.exit_code == 3
    assert "backtest vs replay: identical" in fee.output and "backtest vs paper: same decisions, different fills" in fee.output
    first_trade = load_trade_list(fee_file)[0]  # entry times do not depend on the fee
    assert f"first divergence: [net return] trade entered {_iso(first_trade.entry_time)}" in fee.output
    assert "implied fee per side 0.001 vs 0.002" in fee.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["comparisons"][1]["first_divergence"]["reference_index"] == 0
    slip = runner.invoke(app, [*cli_args(shared_data), "--paper-trades", str(slip_file), "--json"])
    assert slip.exit_code == 3
    div = json.loads(slip.output)["comparisons"][1]["first_divergence"]
    ours, theirs = div["divergence"]["fields"]["entry_fill"]
    assert div["divergence"]["kind"] == "entry" and theirs / ours == pytest.approx(1.001 / 1.0005, rel=1e-12)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def test_a_bar_dropped_from_real_data_is_found_in_the_trade_that_spans_it(shared_data: Path) -> None:
    """Binance BTC/USDT 1h, Q1 2023, SMA cross: bar 1000 (2023-02-11 16:00) falls inside the trade entered at bar 999;
    without it that trade exits one bar number earlier at the same time and price, and every later trade is renumbered."""
    source = CandleSource(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet", "binance", "BTC/USDT", None,
                          1_672_531_200_000, 1_680_307_200_000)  # fmt: skip
    ready = prepare(RunRequest("backtest", "sma_cross", source))
    bars = ready.bars
    keep = np.arange(len(bars)) != 1000
    assert _iso(int(bars.ts[1000])) == "2023-02-11 16:00"
    dropped = Candles.from_columns([c[keep] for c in (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)])
    report = run_parity(ready, {"paper": backtest("sma_cross", dropped).trades.trades})
    assert report.status("replay") == "identical"
    assert report.status("paper") == "same trades, different bar numbering"
    row = report.first_divergence("paper")
    assert row is not None and row.divergence is not None and row.a is not None
    assert (row.a.entry_bar, _iso(row.a.entry_time)) == (999, "2023-02-11 15:00")
    assert row.divergence.fields == {"exit_bar": (1036, 1035)}


# --- (c) paper: a paper session against the local test exchange streaming the same recorded data --------------------


def test_bar_divergence_names_the_first_lost_extra_or_changed_bar() -> None:
    bars = hand_bars()
    rows = list(zip(bars.ts.tolist(), bars.open.tolist(), bars.high.tolist(), bars.low.tolist(), bars.close.tolist(),
                    bars.volume.tolist(), strict=True))  # fmt: skip
    assert bar_divergence(bars, rows, "paper") == "the same 9 closed bars as the reference"
    lost = bar_divergence(bars, rows[:4] + rows[5:], "paper")
    assert lost == "8 closed bars vs 9; first difference at bar 4: paper lacks the bar of 2024-01-01 04:00 (a lost bar)"
    partial = (*rows[4][:2], rows[4][1], rows[4][1], rows[4][1], 0.0)  # the bar as it stood at its open
    changed = bar_divergence(bars, [*rows[:4], partial, *rows[5:]], "paper")
    assert changed == (
        "9 closed bars vs 9; first difference at bar 4: the bar of 2024-01-01 04:00 has other values (high 12.5 vs 12.0, "
        "low 9.5 vs 12.0, close 10.0 vs 12.0, volume 1.0 vs 0.0): an open candle taken for closed, or other data"
    )
    assert bar_divergence(bars, rows[:7], "paper").endswith("paper ends before the reference's bar of 2024-01-01 07:00")
    assert bar_divergence(bars, [*rows, (T0 + 9 * H, 1.0, 1.0, 1.0, 1.0, 1.0)], "paper").endswith(
        "paper has an extra bar at 2024-01-01 09:00"
    )


def test_cli_parity_with_paper_on_real_data_backtest_equals_replay_equals_paper(shared_data: Path) -> None:
    """`pivotal parity --paper` starts the test exchange on the recorded Binance files, streams Q1 2023 1h through
    the live feed (unmodified ccxt.pro) to a paper node: three identical trade lists, the same 2,159 closed bars."""
    result = CliRunner().invoke(app, [*cli_args(shared_data), "--paper", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["identical"] is True
    assert [s["name"] for s in data["sides"]] == ["backtest", "replay", "paper"]
    assert len({s["sha256"] for s in data["sides"]}) == 1 and data["sides"][2]["trades"] > 10
    paper = data["comparisons"][1]
    assert paper["other"] == "paper" and paper["status"] == "identical"
    assert paper["note"] == "a paper session through the live feed; the same 2159 closed bars as the reference"


def test_paper_fingerprint_is_the_stored_backtest_and_replay_one(shared_data: Path) -> None:
    """SMA cross on Binance BTC/USDT 1h over 2023 (8,759 bars, one hour missing on the exchange): the paper session's
    trade list has the sha256 stored for the backtest and the replay (tests/runtime/test_parity_fingerprints.py)."""
    from pivotal.testexchange import TestExchange
    from tests.runtime.test_parity_fingerprints import FINGERPRINTS, SERIES

    file, exchange, symbol, start, end, n = SERIES["binance-1h-2023"]
    ready = prepare(RunRequest("backtest", "sma_cross", CandleSource(shared_data / file, exchange, symbol, None, start, end)))
    assert len(ready.bars) == n
    with TestExchange(shared_data, [symbol], timeframes=("1h",), start=start, speed=0.0) as ex:
        report = run_parity(ready, paper_url=ex.url)
    trades, fingerprint = FINGERPRINTS["binance-1h-2023"]["sma_cross"]
    assert report.names == ("backtest", "replay", "paper")
    assert report.counts == (trades,) * 3 and report.fingerprints == (fingerprint,) * 3, report.text()
    assert report.notes["paper"].endswith(f"the same {n} closed bars as the reference")


def test_paper_on_other_bars_than_the_reference_names_the_bar_and_the_first_trade_divergence(shared_data: Path) -> None:
    """The reference lacks the bar of 2023-01-15 10:00 that the exchange streams: the paper note names that bar, and
    the trade diff the first trade it changes (SMA cross, Binance BTC/USDT 1h, Jan 2023)."""
    from pivotal.testexchange import TestExchange

    source = CandleSource(shared_data / "binance" / "BTCUSDT-1h-2018-2026.parquet", "binance", "BTC/USDT", None,
                          1_672_531_200_000, 1_675_209_600_000)  # fmt: skip
    ready = prepare(RunRequest("backtest", "sma_cross", source))
    bars = ready.bars
    k = int(np.searchsorted(bars.ts, 1_673_776_800_000))  # 2023-01-15 10:00
    keep = np.arange(len(bars)) != k
    cols = [c[keep] for c in (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)]
    dropped = Candles.from_columns(cols, exchange="binance", symbol="BTC/USDT", timeframe="1h")
    with TestExchange(shared_data, ["BTC/USDT"], timeframes=("1h",), start=int(bars.ts[0]), speed=0.0) as ex:
        report = run_parity(replace(ready, bars=dropped), paper_url=ex.url)
    assert report.status("replay") == "identical" and not report.identical
    assert report.notes["paper"] == (
        f"a paper session through the live feed; {len(bars)} closed bars vs {len(bars) - 1}; first difference at bar {k}: "
        "paper has an extra bar at 2023-01-15 10:00 (a duplicated or invented bar)"
    )
    row = report.first_divergence("paper")
    assert row is not None and row.divergence is not None
    assert row.time >= 1_673_776_800_000  # the first differing trade comes at or after the extra bar
    assert report.text().count("first divergence:") == 1


def test_cli_parity_paper_refuses_what_the_test_exchange_cannot_replay(shared_data: Path, tmp_path: Path) -> None:
    coinbase = ["parity", "--strategy", "sma_cross", "-i", str(shared_data / "coinbase" / "BTCUSD-4h.parquet"),
                "--start", "2022-01-01", "--end", "2022-02-01", "--paper"]  # fmt: skip
    result = CliRunner().invoke(app, coinbase)
    assert result.exit_code == 1 and "--paper needs --paper-data DIR" in result.output
    result = CliRunner().invoke(app, [*coinbase, "-e", "coinbase", "--paper-data", str(shared_data)])
    assert result.exit_code == 1
    assert "--paper: the local test exchange speaks Binance" in result.output and "'coinbase'" in result.output
