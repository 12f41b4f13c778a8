"""Reconciliation at start of a testnet run (``ExchangeBook.reconcile_account``) against the local test exchange with the
unmodified ccxt client: a clean start journals ``reconciled``; a foreign open order on the traded symbol, or a trade
made on the exchange between a crash and the restart, refuses the start (HALTED, reason ``reconcile``) with one line;
a difference below the market's amount step (0.00001 BTC) is rounding and passes, one step is not."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from pivotal.config import Settings
from pivotal.core.errors import PivotalError
from pivotal.execution.ccxt_venue import CcxtVenue
from pivotal.runtime.exchange_node import ExchangeBook, ReconcileRefused, _within_step
from pivotal.runtime.journal import Journal
from pivotal.runtime.node import TradingNode
from pivotal.testexchange import TestExchange
from pivotal.testexchange.tape import SymbolData, load_symbol

MIN = 60_000
START = int(pd.Timestamp("2024-03-01T00:00Z").value // 1_000_000)
END = START + 240 * MIN
KEY, SECRET = secrets.token_hex(16), secrets.token_hex(32)  # made per test session, never stored
CREDS = {"api_key": KEY, "api_secret": SECRET}  # the test exchange accepts these
BTC = "BTC/USDT"


@pytest.fixture(scope="module")
def btc_1m(shared_data: Path) -> dict[str, SymbolData]:
    return {"BTCUSDT": load_symbol(shared_data, "BTCUSDT", ("1m",))}


@pytest.fixture(autouse=True)
def _nothing_left_running(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_KEY", KEY)
    monkeypatch.setenv("PIVOTAL_EXCHANGE_API_SECRET", SECRET)
    yield
    alive = [t.name for t in threading.enumerate() if t.name in ("pivotal-testexchange", "pivotal-live-feed")]
    assert alive == [], f"threads still running: {alive}"


@pytest.fixture
def exchange(shared_data: Path, btc_1m: dict[str, SymbolData]) -> Iterator[TestExchange]:
    with TestExchange(shared_data, [BTC], timeframes=("1m",), start=END + MIN, preloaded=btc_1m, **CREDS) as ex:
        ex.pause()  # every bar of the window is closed: the feed backfills them, the exchange fills at its clock
        yield ex


class Crash(Exception):
    """Stands for kill -9 right after the exchange accepted an order (its answer never reached the journal)."""


class CrashingVenue:
    """A real ``CcxtVenue`` that dies after its ``at``-th submit reached the exchange."""

    def __init__(self, inner: CcxtVenue, at: int) -> None:
        self.inner, self.at, self.calls = inner, at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def submit(self, request: Any) -> Any:
        self.calls += 1
        result = self.inner.submit(request)
        if self.calls == self.at:
            raise Crash
        return result


def venue(ex: TestExchange) -> CcxtVenue:
    return CcxtVenue.from_settings(Settings(), "binance", sandbox=True, rest_url=ex.url)


def runner(ex: TestExchange, journal: Path) -> Callable[[Any], Any]:
    from pivotal.runtime.runner import execute_live
    from pivotal.services.backtest import CandleSource
    from pivotal.services.run import RunRequest, prepare

    def run(v: Any) -> Any:
        request = RunRequest("testnet", "sma_cross", CandleSource(None, "binance", BTC, "1m", START, END),
                             capital=1000.0, journal=journal, rest_url=ex.url)  # fmt: skip
        return execute_live(prepare(request), venue=v)

    return run


def kinds(journal: Path, kind: str) -> list[dict[str, Any]]:
    return [r for r in Journal(journal, readonly=True).records if r.get("k") == kind]


def crash_after_first_entry(ex: TestExchange, journal: Path) -> str:
    """Run until the exchange accepted the first order, then die: returns its client id."""
    with pytest.raises(Crash):
        runner(ex, journal)(CrashingVenue(venue(ex), 1))
    (order,) = kinds(journal, "order")
    assert kinds(journal, "sent") == []
    return str(order["id"])


def btc_total(ex: TestExchange) -> float:
    return float(ex.ccxt_client().fetch_balance()["total"].get("BTC", 0.0))


# --- the comparison rule ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "step", "equal"),
    [
        (0.5, 0.5, 1e-5, True),
        (0.5, 0.5 + 4e-6, 1e-5, True),  # dust below one step
        (0.5, 0.5 + 9.99e-6, 1e-5, True),
        (0.5, 0.5 + 1e-5, 1e-5, False),  # one step: someone traded it
        (0.5, 0.5 - 2e-5, 1e-5, False),
        (0.1 + 0.2, 0.3, None, True),  # no step known: float noise only
        (0.3, 0.3 + 1e-9, None, False),
    ],
)
def test_within_step(a: float, b: float, step: float | None, equal: bool) -> None:
    assert _within_step(a, b, step) is equal


def test_amount_step_is_the_markets_lot_step(exchange: TestExchange) -> None:
    assert venue(exchange).amount_step(BTC) == 0.00001  # Binance BTCUSDT LOT_SIZE stepSize


# --- through execute_live ------------------------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_clean_start_and_restart_journal_reconciled(exchange: TestExchange, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    lost = crash_after_first_entry(exchange, journal)
    (start,) = kinds(journal, "start_balance")
    assert start["balances"] == {"BTC": 0.0} and start["exchange"] == "binance"
    (first,) = kinds(journal, "reconciled")
    assert first["assets"] == {"BTC": {"journal": 0.0, "exchange": 0.0, "start": 0.0, "step": 0.00001}}
    assert first["looked_up"] == [] and first["adopted_foreign_orders"] == [] and first["symbols"] == [BTC]
    held = btc_total(exchange)
    assert held > 0  # the crashed order filled on the exchange: only a lookup by client id can explain it

    outcome = runner(exchange, journal)(venue(exchange))  # restart: reconciles, then runs to the end
    records = Journal(journal, readonly=True).records
    second = kinds(journal, "reconciled")[1]
    assert second["looked_up"] == [lost]
    assert second["assets"]["BTC"]["exchange"] == held
    assert second["assets"]["BTC"]["journal"] == pytest.approx(held, abs=1e-12)
    assert [r["k"] for r in records].index("reconciled", 1) < [r["k"] for r in records].index("sent")
    assert kinds(journal, "halted") == [] and len(kinds(journal, "start_balance")) == 1
    assert outcome.snapshot is not None and outcome.sent is not None and outcome.sent >= 1


@pytest.mark.timeout(60)
def test_a_foreign_open_order_refuses_the_start(exchange: TestExchange, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    exchange.ccxt_client().create_order(BTC, "limit", "buy", 0.001, 20_000, {"clientOrderId": "manual-1"})
    with pytest.raises(ReconcileRefused) as caught:
        runner(exchange, journal)(venue(exchange))
    message = str(caught.value)
    run_id = Journal(journal, readonly=True).header()["run_id"]
    assert message == (
        f"HALTED (reconcile): open orders on binance not placed by this run (client ids not {run_id}-*): manual-1 "
        "(BTC/USDT buy 0.001 @ 20000); cancel them on the exchange, or start with --adopt-foreign-orders to leave "
        "them alone"
    )
    assert isinstance(caught.value, PivotalError)  # the CLI prints it as one line, no traceback
    (halted,) = kinds(journal, "halted")
    assert (halted["state"], halted["reason"], halted["message"]) == ("HALTED", "reconcile", message)
    assert [o["id"] for o in halted["foreign_orders"]] == ["manual-1"]
    assert kinds(journal, "order") == [] and kinds(journal, "reconciled") == []
    assert [o["clientOrderId"] for o in exchange.ccxt_client().fetch_orders(BTC)] == ["manual-1"]  # nothing sent


@pytest.mark.timeout(60)
def test_adopt_foreign_orders_starts_and_journals_them(exchange: TestExchange, tmp_path: Path) -> None:
    from pivotal.strategies.sma_cross import SmaCross

    exchange.ccxt_client().create_order(BTC, "limit", "buy", 0.001, 20_000, {"clientOrderId": "manual-1"})
    with Journal(tmp_path / "run.jsonl") as journal:
        node = TradingNode(SmaCross(), [(BTC, "1m")], exchange="binance", journal=journal, run={"strategy": "sma"})
        book = ExchangeBook(venue(exchange), capital=1000.0, adopt_foreign_orders=True)
        book.attach(node)
        (record,) = [r for r in journal.records if r.get("k") == "reconciled"]
    assert book.reconciled is not None and book.reconciled["adopted_foreign_orders"] == record["adopted_foreign_orders"]
    assert [(o["id"], o["side"], o["quantity"], o["price"]) for o in record["adopted_foreign_orders"]] == [
        ("manual-1", "buy", 0.001, 20_000.0)
    ]


@pytest.mark.timeout(90)
def test_a_trade_on_the_exchange_between_kill_and_restart_refuses_the_restart(exchange: TestExchange, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    crash_after_first_entry(exchange, journal)
    before = btc_total(exchange)
    manual = exchange.ccxt_client().create_order(BTC, "market", "buy", 0.001, None, {"clientOrderId": "by-hand"})
    after = btc_total(exchange)
    assert manual["status"] == "closed" and after > before
    with pytest.raises(ReconcileRefused) as caught:
        runner(exchange, journal)(venue(exchange))
    (halted,) = kinds(journal, "halted")
    btc = halted["assets"]["BTC"]
    assert btc["exchange"] == after and btc["journal"] == pytest.approx(before, abs=1e-12) and btc["step"] == 0.00001
    assert str(caught.value) == (
        f"HALTED (reconcile): BTC on binance is {after:.10g} but the journal implies {btc['journal']:.10g} (start 0 "
        f"+ {btc['journal']:.10g} moved by this run; difference {after - btc['journal']:+.10g}, amount step 1e-05): "
        f"the account changed outside this run; restore BTC to {btc['journal']:.10g} or start a new --journal"
    )
    assert after - before == pytest.approx(0.000999, abs=1e-12)  # 0.001 bought, 0.1 % fee charged in BTC
    assert len(kinds(journal, "sent")) == 0  # refused before the re-derivation sent or recorded anything
    assert len(kinds(journal, "reconciled")) == 1  # only the first start's


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("dust", "passes"), [("0.000004", True), ("0.00001", False)])
def test_a_difference_below_the_amount_step_passes(exchange: TestExchange, tmp_path: Path, dust: str, passes: bool) -> None:
    journal = tmp_path / "run.jsonl"
    crash_after_first_entry(exchange, journal)
    exchange.call(lambda state: state.engine._move("BTC", free=Decimal(dust)))  # dust credited by the exchange
    make = CrashingVenue(venue(exchange), 1)  # restart, and stop at its first new order: the check is all we need
    if passes:
        with pytest.raises(Crash):
            runner(exchange, journal)(make)
        btc = kinds(journal, "reconciled")[1]["assets"]["BTC"]
    else:
        with pytest.raises(ReconcileRefused, match=r"difference \+1e-05, amount step 1e-05"):
            runner(exchange, journal)(make)
        btc = kinds(journal, "halted")[0]["assets"]["BTC"]
    assert btc["exchange"] - btc["journal"] == pytest.approx(float(dust), abs=1e-12)


@pytest.mark.timeout(60)
def test_the_cli_prints_the_refusal_as_one_line(exchange: TestExchange, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pivotal.cli.main import app

    exchange.call(lambda state: state.engine._move("BTC", free=Decimal("0.002")))  # the sell order's BTC
    exchange.ccxt_client().create_order(BTC, "limit", "sell", 0.002, 90_000, {"clientOrderId": "web-ui-7"})
    args = ["run", "--mode", "testnet", "--strategy", "sma_cross", "-e", "binance", "-s", BTC, "-t", "1m",
            "--start", str(START), "--end", str(END), "--exchange-url", exchange.url, "--capital", "1000",
            "--no-status", "--journal", str(tmp_path / "run.jsonl")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "HALTED (reconcile): open orders on binance not placed by this run" in lines[0]
    assert "web-ui-7 (BTC/USDT sell 0.002 @ 90000)" in lines[0] and "--adopt-foreign-orders" in lines[0]
    adopted = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "adopt.jsonl"), "--adopt-foreign-orders"])
    assert adopted.exit_code == 0, adopted.output
    (record,) = kinds(tmp_path / "adopt.jsonl", "reconciled")
    assert [o["id"] for o in record["adopted_foreign_orders"]] == ["web-ui-7"]


@pytest.mark.timeout(120)
def test_an_order_the_exchange_rejected_is_not_sent_again_on_restart(shared_data: Path, btc_1m: dict[str, SymbolData],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    from pivotal.testexchange.faults import Faults

    faults = Faults(rest={"/api/v3/order": {1: "insufficient"}})  # the first order placed is refused (-2010)
    with TestExchange(shared_data, [BTC], timeframes=("1m",), start=END + MIN, preloaded=btc_1m, faults=faults, **CREDS) as ex:
        ex.pause()
        journal = tmp_path / "run.jsonl"
        first = runner(ex, journal)(venue(ex))
        (rejected,) = [r for r in kinds(journal, "order_done") if r["status"] == "rejected"]
        assert "insufficient balance" in rejected["reason"].lower()
        on_exchange = [o["clientOrderId"] for o in ex.ccxt_client().fetch_orders(BTC)]
        assert rejected["id"] not in on_exchange and first.sent == len(on_exchange) + 1
        again = runner(ex, journal)(venue(ex))  # a restart re-derives the whole run, the refusal included
        assert again.sent == 0
        assert [o["clientOrderId"] for o in ex.ccxt_client().fetch_orders(BTC)] == on_exchange
        assert len(kinds(journal, "order_done")) == len({r["key"] for r in kinds(journal, "order_done")})
