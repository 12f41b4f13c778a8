"""Each breaker of the risk engine at its exact threshold: just below (no trip), at and above (trip), with its state."""

from __future__ import annotations

import itertools
import math

import pytest

from pivotal.core.clock import SimulatedClock
from pivotal.core.orders import Order
from pivotal.core.trades import Trade
from pivotal.core.vocabulary import ExitReason
from pivotal.risk import RiskConfig, RiskEngine, TradingState
from pivotal.risk.monitors import (
    AdverseSelection,
    Correlation,
    ErrorRate,
    LatencyMedian,
    LossStreak,
    RegimeBreak,
    SigmaMove,
    pearson,
)
from tests.risk.helpers import MIN, bar, fill

pytestmark = pytest.mark.unit


def engine(**settings: object) -> RiskEngine:
    return RiskEngine(RiskConfig.off(**settings), base=None)


def trade(net: float) -> Trade:
    return Trade(0, 1, math.nan, 1, 0, 100.0, math.nan, math.nan, 2, 0, "SIGNAL", 100.0, net)


def rules(e: RiskEngine) -> list[tuple[str, str]]:
    return sorted(e.trips)


# -- max daily loss (2 %) -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("equity", "tripped"), [(0.9801, False), (0.98, True), (0.9799, True)])
def test_daily_loss_trips_at_2pct_below_the_day_start(equity: float, tripped: bool) -> None:
    e = engine(max_daily_loss=0.02)
    e.on_bar_close(bar(0, 100), 1.0)
    e.on_bar_close(bar(1, 100), equity)
    assert (("max_daily_loss", "") in e.trips) is tripped
    assert e.state == (TradingState.HALTED if tripped else TradingState.ACTIVE)
    if tripped:
        assert e.trips[("max_daily_loss", "")].value == pytest.approx(1 - equity)


def test_daily_loss_day_start_is_the_equity_at_the_last_mark_of_the_previous_utc_day() -> None:
    e = engine(max_daily_loss=0.02)
    day = 24 * 60  # bars of one minute
    e.on_bar_close(bar(day - 3, 100), 1.0)
    e.on_bar_close(bar(day - 2, 100), 1.10)  # closes 23:59 of day 0: the next day's start
    e.on_bar_close(bar(day - 1, 100), 1.079)  # closes 00:00 of day 1: 1.9 % below 1.10
    assert e.state == TradingState.ACTIVE
    e.on_bar_close(bar(day, 100), 1.078)  # exactly 2 % below 1.10 (1.10 * 0.98 = 1.078)
    assert rules(e) == [("max_daily_loss", "")]


# -- max drawdown auto-stop -----------------------------------------------------------------------------------------
def test_max_drawdown_halts_and_flattens_every_open_position() -> None:
    e = engine(max_drawdown=0.25)
    e.on_fill(fill("entry", +1, 100.0))
    e.on_fill(fill("entry", -1, 10.0, symbol="ETH/USDT"))
    for i, eq in enumerate([1.0, 2.0, 1.5000001]):
        e.on_bar_close(bar(i, 100), eq)
    assert e.state == TradingState.ACTIVE and e.exit_orders("BTC/USDT") == []
    e.on_bar_close(bar(3, 100), 1.5)  # 25 % below the peak 2.0
    assert e.state == TradingState.HALTED and e.status()["reason"] == "max_drawdown"
    assert e.exit_orders("BTC/USDT") == [Order.exit(tag="risk:max_drawdown", symbol="BTC/USDT", reason=ExitReason.BREAKER)]
    assert e.exit_orders("ETH/USDT") == [Order.exit(tag="risk:max_drawdown", symbol="ETH/USDT", reason=ExitReason.BREAKER)]
    e.on_fill(fill("exit", -1, 90.0))
    assert e.exit_orders("BTC/USDT") == []
    above = engine(max_drawdown=0.25)
    for i, eq in enumerate([1.0, 2.0, 1.4]):
        above.on_bar_close(bar(i, 100), eq)
    assert above.trips[("max_drawdown", "")].value == pytest.approx(0.3)


# -- consecutive losses (5) -----------------------------------------------------------------------------------------
def test_five_losing_trades_in_a_row_trip_and_a_win_restarts_the_count() -> None:
    e = engine(consecutive_losses_limit=5)
    for net in (-0.01, -0.01, 0.0, -0.01, 0.02, -0.01, -0.01, -0.01, -0.01):  # 0.0 counts as a loss
        e.on_trade_closed("BTC/USDT", trade(net))
    assert e.state == TradingState.ACTIVE  # 4 in a row after the win
    e.on_trade_closed("ETH/USDT", trade(-0.001))  # across symbols
    assert e.trips[("consecutive_losses", "")].value == 5 and e.state == TradingState.REDUCING
    s = LossStreak()
    assert [s.update(x) for x in (-1, 0, 1, -1)] == [1, 2, 0, 1]


# -- unusual market (3.0 sigma) -------------------------------------------------------------------------------------
def test_sigma_move_is_the_distance_from_the_mean_in_sample_sds() -> None:
    m = SigmaMove(lookback=6)  # needs 3 returns
    assert [m.update(r) for r in (0.0, 2.0, 4.0)] == [pytest.approx(math.nan, nan_ok=True)] * 3
    assert m.update(8.0) == 3.0  # mean 2, sd 2


@pytest.mark.parametrize(("last_close", "tripped"), [(133.5, False), (135.0, True), (136.5, True)])
def test_unusual_market_trips_at_3_sigma_for_that_symbol_only(last_close: float, tripped: bool) -> None:
    e = engine(unusual_market_threshold=3.0, sigma_lookback=6)
    for i, c in enumerate([1.0, 1.0, 3.0, 15.0, last_close]):  # returns 0, 2, 4, then 7.9 / 8 / 8.1
        e.on_bar_close(bar(i, c), 1.0)
    assert (("unusual_market", "BTC/USDT") in e.trips) is tripped
    if tripped:
        assert e.state_for("ETH/USDT")[0] == TradingState.ACTIVE
        assert e.check(Order.enter(+1, symbol="BTC/USDT"), bar(5, 1), False, False).reason == "reducing: unusual_market"
        assert e.check(Order.enter(+1, symbol="ETH/USDT"), bar(5, 1), False, False).allowed


# -- correlation spike (0.8) ----------------------------------------------------------------------------------------
def test_correlation_matches_returns_by_bar_time_over_the_window() -> None:
    c = Correlation("BTC", window=3)
    assert c.update("ETH", 1, 0.01) == {}  # the reference has no return at t=1 yet
    assert math.isnan(c.update("BTC", 1, 0.02)["ETH"])  # one pair of three
    c.update("BTC", 2, -0.01), c.update("ETH", 2, -0.02)
    c.update("ETH", 3, 0.5)  # no reference return at t=3: unmatched, ignored
    c.update("BTC", 4, 0.03)
    assert c.update("ETH", 4, 0.06)["ETH"] == pytest.approx(pearson([0.01, -0.02, 0.06], [0.02, -0.01, 0.03]))


def _corr_engine(threshold: float) -> RiskEngine:
    e = engine(max_correlation_spike=threshold, correlation_reference="BTC", correlation_window=3)
    btc, eth = [100, 101, 99, 102], [10, 10.3, 9.9, 10.05]
    for i in range(4):
        e.on_bar_close(bar(i, btc[i], symbol="BTC"), 1.0)
        e.on_bar_close(bar(i, eth[i], symbol="ETH"), 1.0)
    return e


def test_correlation_spike_trips_at_the_threshold_on_the_correlated_symbol() -> None:
    rho = pearson(
        [math.log(10.3 / 10), math.log(9.9 / 10.3), math.log(10.05 / 9.9)],
        [math.log(101 / 100), math.log(99 / 101), math.log(102 / 99)],
    )
    assert 0.8 < rho < 1
    assert _corr_engine(math.nextafter(rho, 1)).trips == {}
    at = _corr_engine(rho)
    assert rules(at) == [("correlation_spike", "ETH")] and at.trips[("correlation_spike", "ETH")].value == rho
    assert rules(_corr_engine(0.8)) == [("correlation_spike", "ETH")]
    assert engine(max_correlation_spike=0.8).trips == {}  # no reference: nothing to compare with


# -- latency (500 ms) -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("samples", "tripped"), [((400, 600, 499), False), ((400, 600, 500), True), ((501,) * 3, True)])
def test_latency_trips_when_the_median_of_the_last_samples_reaches_500ms(samples: tuple[int, ...], tripped: bool) -> None:
    e = engine(latency_threshold_ms=500, latency_samples=3)
    for ms in samples:
        e.on_latency(ms)
    assert (("latency", "") in e.trips) is tripped
    m = LatencyMedian(3)
    assert math.isnan(m.update(10_000)) and math.isnan(m.update(10_000))  # fewer than k samples: no verdict


# -- adverse selection (0.6) ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("adverse", "tripped"), [(2, False), (3, True), (4, True)])
def test_adverse_selection_share_of_the_last_fills_moving_against_them(adverse: int, tripped: bool) -> None:
    e = engine(max_adverse_selection=0.6, adverse_window=5, adverse_horizon_ms=MIN)
    for k in range(5):  # five buys at 100; judged by the first mark at or after fill time + 1 min
        e.on_fill(fill("entry", +1, 100.0, ts=k * MIN))
        e.on_fill(fill("exit", -1, 100.0, ts=k * MIN))  # (a sell at 100, judged too: adverse when the price rises)
    a = AdverseSelection(MIN, 5)
    for k in range(5):
        a.on_fill("X", k * MIN, +1, 100.0)
    assert a.on_mark("X", MIN - 1, 50.0) is None  # before the horizon: nothing judged
    marks = [99.0] * adverse + [100.0] * (5 - adverse)  # equal to the fill price is not adverse
    shares = [a.on_mark("X", (k + 1) * MIN, p) for k, p in enumerate(marks)]
    assert shares[-1] == adverse / 5 and all(math.isnan(s) for s in shares[:-1])  # type: ignore[arg-type]
    e2 = engine(max_adverse_selection=0.6, adverse_window=5, adverse_horizon_ms=MIN)
    for k in range(5):
        e2.on_fill(fill("entry", +1, 100.0, ts=k * MIN))
    for k, p in enumerate(marks):
        e2.on_price("BTC/USDT", p, (k + 1) * MIN)
    assert (("adverse_selection", "") in e2.trips) is tripped
    assert e.trips == {}  # no marks yet: nothing judged


# -- regime break (0.3) ---------------------------------------------------------------------------------------------
def test_regime_break_statistic_compares_recent_and_earlier_volatility() -> None:
    r = RegimeBreak(short=2, long=2)
    assert [math.isnan(r.update(x)) for x in (0.0, 1.0, 0.0)] == [True] * 3
    assert r.update(3.0) == pytest.approx(0.5)  # sd 3/sqrt2 vs 1/sqrt2: |3-1|/(3+1)


def _regime_engine(threshold: float, closes: list[float]) -> RiskEngine:
    e = engine(regime_break_threshold=threshold, regime_short=2, regime_long=2)
    for i, c in enumerate(closes):
        e.on_bar_close(bar(i, c), 1.0)
    return e


def test_regime_break_trips_at_the_threshold() -> None:
    closes = [100.0, 100.0, 101.0, 101.0, 104.0]
    r = RegimeBreak(2, 2)
    d = [r.update(math.log(b / a)) for a, b in itertools.pairwise(closes)][-1]
    assert d > 0.3
    assert _regime_engine(math.nextafter(d, 1), closes).trips == {}
    assert rules(_regime_engine(d, closes)) == [("regime_break", "BTC/USDT")]
    assert rules(_regime_engine(0.3, closes)) == [("regime_break", "BTC/USDT")]


# -- stale market data ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("missing", "tripped"), [(0, False), (1, False), (2, True)])
def test_stale_data_trips_when_no_bar_closed_within_n_timeframes(missing: int, tripped: bool) -> None:
    e = engine(stale_data_bars=2)
    e.on_bar_close(bar(0, 100), 1.0)
    e.on_bar_close(bar(1 + missing, 100), 1.0)  # the clock is then (1 + missing) minutes past bar 0's close
    assert (("stale_data", "BTC/USDT") in e.trips) is tripped
    if tripped:
        t = e.trips[("stale_data", "BTC/USDT")]
        assert (t.value, t.threshold) == (3 * MIN, 2 * MIN)


def test_stale_data_on_a_timer_with_the_runtime_clock() -> None:
    clock = SimulatedClock(0)
    e = RiskEngine(RiskConfig.off(stale_data_bars=1.5), clock=clock, base=None)
    clock.set(MIN)
    e.on_bar_close(bar(0, 100), 1.0)  # closed at 1 min
    clock.set(MIN + 90_000)
    e.check_time()
    assert e.trips == {}  # exactly 1.5 timeframes old: still within
    clock.advance(1)
    e.check_time()
    assert rules(e) == [("stale_data", "BTC/USDT")] and e.trips[("stale_data", "BTC/USDT")].time == MIN + 90_001


# -- stale model ----------------------------------------------------------------------------------------------------
def test_stale_model_trips_when_the_serving_model_is_older_than_the_limit() -> None:
    clock = SimulatedClock(10_000)
    e = RiskEngine(RiskConfig.off(stale_model_ms=5_000), clock=clock, base=None)
    e.on_model_status("cnn", updated_ms=5_001)
    assert e.trips == {}  # 4,999 ms old
    clock.advance(1)
    e.check_time()
    assert rules(e) == [("stale_model", "")] and e.trips[("stale_model", "")].value == 5_000


# -- exchange error rate --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("errors", "tripped"), [(1, False), (2, True), (3, True)])
def test_error_rate_trips_at_the_share_of_failed_requests(errors: int, tripped: bool) -> None:
    clock = SimulatedClock(0)
    e = RiskEngine(RiskConfig.off(max_error_rate=0.5, error_window_ms=1_000, error_min_requests=4), clock=clock, base=None)
    for k in range(4):
        clock.set(k * 100)
        e.on_request(ok=k >= errors)
    assert (("error_rate", "") in e.trips) is tripped


def test_error_rate_needs_enough_requests_and_forgets_old_ones() -> None:
    r = ErrorRate(window_ms=1_000, min_requests=3)
    assert math.isnan(r.update(0, False)) and math.isnan(r.update(1, False))
    assert r.update(2, True) == pytest.approx(2 / 3)
    assert math.isnan(r.update(1_000))  # the request at t=0 left the window (0, 1000]: two remain
    assert r.update(1_000, True) == pytest.approx(1 / 3)  # t=1 error, t=2 and t=1000 fine
    assert math.isnan(r.update(1_002, True))  # window (2, 1002]: t=1000 and t=1002 only
