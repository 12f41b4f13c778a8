"""`pivotal run` on several symbols (Binance BTC/USDT and ETH/USDT 1h, real bars): one node, one portfolio, one merged
feed. With a per-symbol rule strategy and no risk engine coupling them, each symbol's trades are exactly its
single-symbol run's; the trade list names each trade's symbol; buy-and-hold is the equal-weight basket."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pivotal.cli.main import app
from pivotal.config import load_settings
from pivotal.core.errors import PivotalError, UserInputError
from pivotal.data.backends import open_store
from pivotal.data.loaders import load_candles_file
from pivotal.runtime.node import trade_fingerprint
from pivotal.runtime.runner import RunOutcome, basket_buy_and_hold, execute
from pivotal.services.backtest import BuyAndHold, CandleSource
from pivotal.services.run import RunRequest, prepare

START, END = 1704067200000, 1711929600000  # 2024-01-01 .. 2024-04-01
SYMBOLS = ("BTC/USDT", "ETH/USDT")
runner = CliRunner()


@pytest.fixture
def stored(shared_data: Path) -> None:
    store = open_store(load_settings())
    try:
        for symbol in SYMBOLS:
            path = shared_data / "binance" / f"{symbol.replace('/', '')}-1h-2018-2026.parquet"
            bars = load_candles_file(path, start=START, end=END, exchange="binance", symbol=symbol)
            store.write_candles(bars, source=path.name)
    finally:
        store.close()


def run(strategy: str, symbols: tuple[str, ...], mode: str = "replay", **extra: object) -> RunOutcome:
    source = CandleSource(None, "binance", symbols[0], "1h", START, END)
    markets = tuple((s, "1h") for s in symbols) if len(symbols) > 1 else ()
    request = RunRequest(mode, strategy, source, markets=markets, **extra)  # type: ignore[arg-type]
    return execute(prepare(request, load_settings()))


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("strategy", ["sma_cross", "liquidity_sweep"])
def test_each_symbols_trades_are_its_single_symbol_runs(strategy: str) -> None:
    both = run(strategy, SYMBOLS)
    assert both.events == 2 * 2184 and both.run.bars == 2 * 2184  # 91 days of hourly bars each, merged
    per_symbol = both.run.result.symbol_trades
    for symbol in SYMBOLS:
        alone = run(strategy, (symbol,))
        assert len(alone.run.result.trades) > 3
        assert trade_fingerprint(per_symbol[symbol].trades) == trade_fingerprint(alone.run.result.trades.trades)
    assert len(both.run.result.trades) == sum(len(t) for t in per_symbol.values())
    assert sorted(set(both.trade_symbols)) == list(SYMBOLS)
    backtest = run(strategy, SYMBOLS, mode="backtest")  # backtest mode: the same node, the same trades
    assert trade_fingerprint(backtest.run.result.trades.trades) == trade_fingerprint(both.run.result.trades.trades)


@pytest.mark.usefixtures("stored")
def test_the_capital_is_split_and_the_benchmark_is_the_basket(tmp_path: Path) -> None:
    both = run("sma_cross", SYMBOLS, journal=tmp_path / "run.jsonl")
    records = [json.loads(line[9:]) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    entries = [o for r in records if r["k"] == "decision" for o in r["orders"] if o["action"] == "enter"]
    assert {o["symbol"] for o in entries} == set(SYMBOLS) and {o["fraction"] for o in entries} == {0.5}  # half each
    bars = [prepare(RunRequest("replay", "sma_cross", CandleSource(None, "binance", s, "1h", START, END))).bars for s in SYMBOLS]
    legs = [BuyAndHold.of(b, 0.001, 0.0005) for b in bars]
    basket = both.run.buy_and_hold
    assert basket is not None and basket.net_profit_pct == pytest.approx((legs[0].net_profit_pct + legs[1].net_profit_pct) / 2)
    assert basket == basket_buy_and_hold(bars, 0.001, 0.0005)
    assert 0 < basket.max_drawdown < max(leg.max_drawdown for leg in legs)  # the basket diversifies
    # the merged equity curve ends at the portfolio's equity after every symbol's end-of-data exit (the snapshot's)
    assert both.snapshot is not None and both.run.end_capital == pytest.approx(both.snapshot.equity, rel=1e-12)
    assert both.run.result.metrics["max_drawdown_mtm"] > 0  # per-bar metrics of the merged curve


@pytest.mark.usefixtures("stored")
def test_the_cli_writes_one_trade_list_with_a_symbol_column(tmp_path: Path) -> None:
    singles = []
    for symbol in SYMBOLS:
        out = tmp_path / f"{symbol.replace('/', '')}.csv"
        result = runner.invoke(app, ["run", "--strategy", "sma_cross", "-e", "binance", "-s", symbol, "-t", "1h",
                                     "--start", "2024-01-01", "--end", "2024-04-01", "--trades-out", str(out)])  # fmt: skip
        assert result.exit_code == 0, result.output
        singles.append(pd.read_csv(out))
    args = ["run", "--strategy", "sma_cross", "-e", "binance", "-s", "BTC/USDT,ETH/USDT", "-t", "1h", "--start",
            "2024-01-01", "--end", "2024-04-01", "--trades-out", str(tmp_path / "both.csv"),
            "--out", str(tmp_path / "out")]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "sma_cross on binance BTC/USDT, ETH/USDT 1h: 4368 bars" in text and "Per symbol (one portfolio)" in text
    both = pd.read_csv(tmp_path / "both.csv")
    assert list(both.columns[:2]) == ["symbol", "signal_bar"]
    for symbol, alone in zip(SYMBOLS, singles, strict=True):
        mine = both[both.symbol == symbol].drop(columns="symbol").reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, alone)
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"summary.json", "trades.csv", "equity-BTC-USDT.png", "equity-ETH-USDT.html"} <= files
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [row["symbol"] for row in summary["symbols"]] == list(SYMBOLS)
    assert sum(row["trades"] for row in summary["symbols"]) == len(both)
    assert (tmp_path / "out" / "trades.csv").read_text() == (tmp_path / "both.csv").read_text()


@pytest.mark.usefixtures("stored")
def test_several_symbols_refusals_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match=r"^--mode testnet trades one symbol for now; several symbols run in --mode"):
        run("sma_cross", SYMBOLS, mode="testnet")
    with pytest.raises(PivotalError, match=r"^no stored candles for binance SOL/USDT 1h: .*; import it first"):
        run("sma_cross", ("BTC/USDT", "SOL/USDT"))
    result = runner.invoke(app, ["run", "-s", "BTC/USDT,ETH/USDT", "-t", "1h", "--input", str(tmp_path / "x.csv")])
    assert result.exit_code == 1 and "input: a candle file holds one symbol" in " ".join(result.output.split())
