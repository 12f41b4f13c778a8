"""COBY across five local venues in one process, each to its own unmodified ccxt.pro client:

* ``binance`` — the local test exchange replaying the recorded Binance BTCUSDT spot capture (2024-08-08);
* ``binanceusdm`` — the test exchange's USD-M venue replaying the recorded BTCUSDT perpetual capture (2024-07-18);
* ``coinbase`` — a Coinbase Advanced Trade ``level2`` server fed by the REAL Coinbase BTC-USD 15-level book
  (1-minute snapshots, 2021-04-17); its level2 updates are DERIVED as the changes between consecutive real snapshots;
* ``bybit(protocol-test: binance capture)`` and ``okx(protocol-test: binance capture)`` — Bybit v5 / OKX v5 servers
  replaying the RECORDED BINANCE spot capture in Bybit's and OKX's wire formats. There is no Bybit or OKX depth data
  here: these venues test the Bybit and OKX protocol adapters (parsing, sequence rules, OKX checksum, resync) and
  are not Bybit or OKX market data.

The captures are from different days, so the merge checks the plumbing and makes no market claim about spreads.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pivotal.core.errors import UserInputError
from pivotal.data.orderbook.replay import replay_top_of_book
from pivotal.runtime.consolidator import Consolidator, VenueSpec
from pivotal.testexchange import Faults, TestExchange, venue_bybit, venue_coinbase, venue_okx
from pivotal.testexchange.tape import SymbolData
from pivotal.testexchange.venue_base import binance_tape, book15_snapshots, coinbase_book15_tape
from tests.orderbook.captures import load_capture

pytestmark = [pytest.mark.realdata, pytest.mark.timeout(120)]

BYBIT = "bybit(protocol-test: binance capture)"
OKX = "okx(protocol-test: binance capture)"
STEPS = 300  # Binance diffs replayed through the Bybit / OKX servers
CB_STEPS = 60  # derived Coinbase level2 updates (one per real 1-minute snapshot)


def test_five_venues_consolidate_exactly_with_health(
    shared_data: Path, btc_spot: dict[str, SymbolData], btc_usdm: dict[str, SymbolData]
) -> None:
    cb_path = shared_data / "coinbase" / "BTCUSD-book15-1m.parquet"
    snapshots = {t: (b, a) for t, b, a in book15_snapshots(cb_path)}
    tape = binance_tape(shared_data / "binance", "BTCUSDT", "BTCUSDT", STEPS)
    cap = load_capture(shared_data, "binance", "BTCUSDT")
    reference = replay_top_of_book(cap.snapshot, cap.messages)  # the exact rebuild (tests/orderbook checks it)
    top_at = {int(u): i for i, u in enumerate(cap.messages.final_id)}

    cb = venue_coinbase.CoinbaseServer(coinbase_book15_tape(cb_path, CB_STEPS), interval_s=0.01,
                                       faults={10: "drop", 45: "disconnect"})  # fmt: skip
    by = venue_bybit.BybitServer(tape, interval_s=0.003, faults={100: "drop", 200: "disconnect"})
    ok = venue_okx.OkxServer(dataclasses.replace(tape, symbol="BTC-USDT"), interval_s=0.003,
                             faults={100: "corrupt", 200: "disconnect"})  # fmt: skip
    usdm_faults = Faults(streams={"btcusdt@depth@100ms": {150: "drop"}})
    spot = TestExchange(shared_data, ["BTC/USDT"], timeframes=("1m",), preloaded=btc_spot, speed=20)
    usdm = TestExchange(shared_data, ["BTC/USDT"], (), preloaded=btc_usdm, speed=20, faults=usdm_faults, venue="usdm")
    checks = {"consolidated": 0, "coinbase": 0, "okx": 0}
    wrong: list[str] = []

    def on_update(venue: str, symbol: str) -> None:
        merged = con.book(symbol)
        tops = [con.venue_book(v, symbol) for v in merged.venues]
        bids = [b for b in (t.best_bid() for t in tops) if b is not None]
        asks = [a for a in (t.best_ask() for t in tops) if a is not None]
        best_bid, best_ask = merged.best_bid, merged.best_ask
        want_bid = max((b[0] for b in bids), default=None)
        want_ask = min((a[0] for a in asks), default=None)
        if (best_bid and best_bid[0]) != want_bid or (best_ask and best_ask[0]) != want_ask:
            wrong.append(f"{venue} {symbol}: {best_bid} {best_ask} vs {bids} {asks}")
        checks["consolidated"] += 1
        book = con.venue_book(venue, symbol)
        if venue == "coinbase":  # the rebuilt book equals the real snapshot of that minute, level for level
            event = con.health(symbol)[venue].last_event_ms
            assert event is not None
            real_bids, real_asks = snapshots[event]
            got_bids, got_asks = book.top(100)
            if not (np.array_equal(got_bids, real_bids) and np.array_equal(got_asks, real_asks)):
                wrong.append(f"coinbase book != real snapshot at {event}")
            checks["coinbase"] += 1
        elif venue == OKX:  # seqId is the Binance u: the top equals the exact Binance rebuild after that message
            i = top_at.get(book.last_update_id)
            if i is None:  # the snapshot of a subscription before the first step: the recorded REST snapshot
                assert book.last_update_id == cap.snapshot[0]
                b, a = cap.snapshot[1], cap.snapshot[2]
                expect = (b[:, 0].max(), b[b[:, 0].argmax(), 1], a[:, 0].min(), a[a[:, 0].argmin(), 1])
            else:
                expect = (reference.bid_px[i], reference.bid_qty[i], reference.ask_px[i], reference.ask_qty[i])
            if (*book.best_bid(), *book.best_ask()) != expect:  # type: ignore[misc]
                wrong.append(f"okx top at u={book.last_update_id}")
            checks["okx"] += 1

    with spot, usdm, cb, by, ok:
        venues = [
            VenueSpec("binance", spot.ccxt_pro_client, ("BTC/USDT",)),
            VenueSpec("binanceusdm", usdm.ccxt_pro_client, ("BTC/USDT:USDT",), exchange_id="binanceusdm"),
            VenueSpec("coinbase", lambda: venue_coinbase.client(cb), ("BTC/USD",), exchange_id="coinbase"),
            VenueSpec(BYBIT, lambda: venue_bybit.client(by), ("BTC/USDT",), exchange_id="bybit"),
            VenueSpec(OKX, lambda: venue_okx.client(ok), ("BTC/USDT",), exchange_id="okx"),
        ]
        # depth 1: the check at every update needs the best levels only (the full merge is checked at the end)
        con = Consolidator(venues, depth=1, max_age_ms=10**12, on_update=on_update, backoff_base_s=0.01)

        def done(c: Consolidator) -> bool:
            servers_done = all(s.position == len(s.tape.steps) - 1 for s in (cb, by, ok))
            h = c.health("BTC/USDT")
            binance = all(h[v].messages >= 300 for v in ("binance", "binanceusdm"))
            synced = all(x.synced for x in [*h.values(), *c.health("BTC/USD").values()])
            return servers_done and binance and synced

        asyncio.run(con.run(duration_s=60, until=done))
    assert wrong == []
    # every update applied was checked; those a venue sent between a gap and its resubscription are not applied
    # (their number depends on the machine's load)
    assert checks["consolidated"] > 1000 and checks["coinbase"] >= CB_STEPS // 3 and checks["okx"] >= STEPS // 3

    usdt, usd = con.health("BTC/USDT"), con.health("BTC/USD")
    assert set(usdt) == {"binance", "binanceusdm", BYBIT, OKX} and set(usd) == {"coinbase"}  # USD and USDT apart
    assert all(h.synced and h.included for h in [*usdt.values(), *usd.values()])
    # each injected fault is in the venue's health, and the book came back through a fresh snapshot
    assert cb.served == [(10, "drop"), (45, "disconnect")] and (usd["coinbase"].gaps, usd["coinbase"].reconnects) == (1, 1)
    assert (usdt[BYBIT].gaps, usdt[BYBIT].reconnects, usdt[BYBIT].resyncs) == (1, 1, 2)
    assert (usdt[OKX].checksum_failures, usdt[OKX].gaps, usdt[OKX].reconnects, usdt[OKX].resyncs) == (1, 0, 1, 2)
    assert usdm.state is not None and len(usdm.state.hub.dropped) == 1  # a drop before the first snapshot is no gap
    assert usdt["binanceusdm"].resyncs == usdt["binanceusdm"].gaps and usdt["binance"].gaps == 0
    # after the replays the protocol-test books equal the servers' books level for level (the whole depth)
    for venue, server in ((BYBIT, by), (OKX, ok)):
        got, want = con.venue_book(venue, "BTC/USDT").top(10**6), server.book.top(10**6)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    con.depth = 10
    merged = con.book("BTC/USDT")
    assert merged.venues == ("binance", "binanceusdm", BYBIT, OKX) and merged.symbol == "BTC/USDT"
    np.testing.assert_allclose(merged.bid_share.sum(axis=1), merged.bids[:, 1])
    # each venue's ten best bids are in the merge with their own quantity at their price
    for k, venue in enumerate(merged.venues):
        own = con.venue_book(venue, "BTC/USDT").top(10)[0]
        share = dict(zip(merged.bids[:, 0].tolist(), merged.bid_share[:, k].tolist(), strict=True))
        assert all(share.get(p, 0.0) == q for p, q in own.tolist() if p >= merged.bids[-1, 0])


def test_okx_sequence_gap_is_reported_and_resynced(shared_data: Path) -> None:
    """OKX protocol test on the recorded BINANCE capture (not OKX market data): a dropped update breaks the
    ``prevSeqId`` chain; ccxt.pro okx resubscribes by itself and the feed's book comes back equal to the server's."""
    tape = binance_tape(shared_data / "binance", "BTCUSDT", "BTC-USDT", 150)
    with venue_okx.OkxServer(tape, interval_s=0.003, faults={60: "drop"}) as ok:
        con = Consolidator([VenueSpec(OKX, lambda: venue_okx.client(ok), ("BTC/USDT",), exchange_id="okx")], max_age_ms=10**12)

        def done(c: Consolidator) -> bool:
            return ok.position == len(tape.steps) - 1 and c.health("BTC/USDT")[OKX].synced

        asyncio.run(con.run(duration_s=30, until=done))
        want = ok.book.top(10**6)
    h = con.health("BTC/USDT")[OKX]
    assert ok.served == [(60, "drop")] and (h.gaps, h.checksum_failures, h.reconnects, h.resyncs) == (1, 0, 0, 1)
    got = con.venue_book(OKX, "BTC/USDT").top(10**6)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


def test_quote_groups_join_usdt_to_usd_only_when_asked() -> None:
    venues = [
        VenueSpec("coinbase", object(), ("BTC/USD",), exchange_id="coinbase"),
        VenueSpec("okx", object(), ("BTC/USDT",), exchange_id="okx"),
        VenueSpec("binanceusdm", object(), ("BTC/USDT:USDT",), exchange_id="binanceusdm"),
    ]
    apart = Consolidator(venues)
    assert [apart.instrument(s) for s in ("BTC-USD", "BTC/USDT:USDT", "BTCUSDT")] == ["BTC/USD", "BTC/USDT", "BTC/USDT"]
    assert set(apart.health("BTC/USD")) == {"coinbase"} and set(apart.health("BTCUSDT")) == {"okx", "binanceusdm"}
    joined = Consolidator(venues, quote_groups={"USDT": "USD"})
    health = joined.health("BTC/USD")
    assert set(health) == {"coinbase", "okx", "binanceusdm"}
    assert {v: h.quote for v, h in health.items()} == {"coinbase": "USD", "okx": "USDT", "binanceusdm": "USDT"}
    assert all(h.reason == "waiting for the first snapshot" and not h.included for h in health.values())


def test_unknown_venue_is_refused() -> None:
    with pytest.raises(UserInputError, match=r"'kr' \(kraken\) is not supported"):
        Consolidator([VenueSpec("kr", object(), ("BTC/USD",), exchange_id="kraken")])
