"""The venue wire formats of the consolidator, without sockets: OKX's checksum string, the sequence rules, and each
protocol adapter on messages in the venues' documented shapes (hand-written, tiny: not market data)."""

from __future__ import annotations

import zlib

import numpy as np

from pivotal.data.orderbook.venues import BookUpdate, chain_break, iso_ms, number_text, okx_checksum
from pivotal.runtime.venues import BybitProtocol, CoinbaseProtocol, OkxProtocol


def _signed(crc: int) -> int:
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def test_okx_checksum_interleaves_best_levels_as_written() -> None:
    bids, asks = [[3366.1, 7.0], [3366.0, 6.0]], [[3366.8, 9.0], [3368.0, 8.0], [3372.0, 8.0]]
    want = _signed(zlib.crc32(b"3366.1:7:3366.8:9:3366:6:3368:8:3372:8"))
    assert okx_checksum(bids, asks) == want
    many = [[100.0 - i, 1.0] for i in range(30)]
    assert okx_checksum(many, []) == _signed(zlib.crc32(":".join(f"{100 - i}:1" for i in range(25)).encode()))


def test_number_text_and_iso_ms() -> None:
    assert [number_text(x) for x in (1e-05, 58000.0, 58000.01, 0.1)] == ["0.00001", "58000", "58000.01", "0.1"]
    assert iso_ms("2023-02-09T20:32:50.714964855Z") == 1675974770714
    assert iso_ms("2021-04-17T17:22:00Z") == 1618680120000


def _update(seq: int, prev: int | None = None, snapshot: bool = False) -> BookUpdate:
    empty = np.empty((0, 2))
    return BookUpdate("X", snapshot, seq, prev, empty, empty, None)


def test_chain_rules() -> None:
    assert chain_break(10, _update(11)) is None and chain_break(10, _update(13)) == (11, 13)
    assert chain_break(10, _update(25, prev=10)) is None and chain_break(10, _update(25, prev=12)) == (10, 12)
    assert chain_break(10, _update(1, snapshot=True)) is None


def test_coinbase_adapter_checks_the_connection_sequence() -> None:
    proto = CoinbaseProtocol()
    conn = object()
    sub = {"channel": "subscriptions", "sequence_num": 0, "events": [{"subscriptions": {"level2": ["BTC-USD"]}}]}
    assert proto.parse(conn, sub).updates == []
    snap = {
        "channel": "l2_data", "timestamp": "2023-02-09T20:32:50.714964855Z", "sequence_num": 1,
        "events": [{"type": "snapshot", "product_id": "BTC-USD", "updates": [
            {"side": "bid", "event_time": "", "price_level": "21921.73", "new_quantity": "0.06317902"},
            {"side": "offer", "event_time": "", "price_level": "21921.74", "new_quantity": "0.5"},
        ]}],
    }  # fmt: skip
    parsed = proto.parse(conn, snap)
    (u,) = parsed.updates
    assert parsed.connection_gap is None and u.snapshot and u.market_id == "BTC-USD" and u.event_ms == 1675974770714
    assert u.bids.tolist() == [[21921.73, 0.06317902]] and u.asks.tolist() == [[21921.74, 0.5]]
    later = dict(snap, sequence_num=4, events=[{"type": "update", "product_id": "BTC-USD", "updates": []}])
    assert proto.parse(conn, later).connection_gap == (2, 4)
    assert proto.parse(object(), dict(later, sequence_num=0)).connection_gap is None  # a new connection: a new chain


def test_bybit_and_okx_adapters() -> None:
    bybit = {
        "topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1672304484978,
        "data": {"s": "BTCUSDT", "b": [["16493.50", "0"]], "a": [["16611.00", "0.029"]], "u": 18521288, "seq": 7961638724},
        "cts": 1672304484976,
    }  # fmt: skip
    (u,) = BybitProtocol().parse(None, bybit).updates
    assert (u.market_id, u.snapshot, u.seq, u.prev, u.event_ms) == ("BTCUSDT", False, 18521288, None, 1672304484978)
    assert u.bids.tolist() == [[16493.5, 0.0]] and u.asks.tolist() == [[16611.0, 0.029]]
    okx = {
        "arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
        "data": [{"asks": [["8476.98", "415", "0", "13"]], "bids": [], "ts": "1597026383085", "checksum": -855196043,
                  "prevSeqId": 123455, "seqId": 123456}],
    }  # fmt: skip
    (o,) = OkxProtocol().parse(None, okx).updates
    assert (o.market_id, o.snapshot, o.seq, o.prev, o.checksum) == ("BTC-USDT", False, 123456, 123455, -855196043)
    assert o.asks.tolist() == [[8476.98, 415.0]] and o.bids.shape == (0, 2)
    assert OkxProtocol().parse(None, {"event": "subscribe", "arg": {"channel": "books"}}).updates == []
