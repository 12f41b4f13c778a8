"""The write-ahead journal: idempotent appends, torn tails ignored and cut, damage refused, recovery of state."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.runtime.journal import Journal, JournalBusy, JournalCorrupt

pytestmark = pytest.mark.unit


def fill(cid: str, kind: str, t: int, position: dict | None) -> dict:
    return {"t": t, "order": cid, "kind": kind, "symbol": "BTC/USDT", "price": 100.5, "quantity": 0.01, "position": position}


POS = {"symbol": "BTC/USDT", "direction": 1, "quantity": 0.01, "entry_price": 100.5, "order": "r-1"}


def sample(path: Path) -> None:
    with Journal(path) as j:
        j.append("run", "run", {"run_id": "r", "strategy": "sma_cross"})
        j.append("order", "order:r-1", {"t": 60_000, "id": "r-1", "symbol": "BTC/USDT", "status": "accepted"})
        j.append("fill", "fill:r-1:entry", fill("r-1", "entry", 120_000, POS))
        j.append("order_done", "order_done:r-1", {"t": 120_000, "id": "r-1", "status": "filled"})
        j.append("order", "order:r-2", {"t": 180_000, "id": "r-2", "symbol": "BTC/USDT", "status": "accepted"})
        j.append("order", "order:r-3", {"t": 180_000, "id": "r-3", "symbol": "ETH/USDT", "status": "denied"})
        j.append("progress", None, {"t": 240_000}, sync=False)


def test_recover_rebuilds_open_orders_positions_and_the_last_event_time(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    sample(path)
    r = Journal(path, readonly=True).recover()
    assert r.run == {"run_id": "r", "strategy": "sma_cross", "k": "run", "key": "run"}
    assert list(r.open_orders) == ["r-2"]
    assert r.positions == {"BTC/USDT": POS}
    assert r.last_event_time == 240_000 and not r.ended and not r.torn
    with Journal(path) as j:
        j.append("fill", "fill:r-1:exit", fill("r-1", "exit", 300_000, None))
        j.append("order_done", "order_done:r-2", {"t": 300_000, "id": "r-2", "status": "filled"})
        j.append("end", "end", {"t": 300_000})
    r = Journal(path, readonly=True).recover()
    assert r.positions == {} and r.open_orders == {} and r.ended and len(r.fills) == 2


def test_appends_are_idempotent_by_key(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    sample(path)
    size = path.stat().st_size
    with Journal(path) as j:
        assert j.append("order", "order:r-1", {"id": "r-1", "status": "accepted"}) is False
        assert j.has("fill:r-1:entry")
    assert path.stat().st_size == size


def test_a_torn_last_record_is_ignored_and_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    sample(path)
    whole = path.read_bytes()
    path.write_bytes(whole + whole.splitlines(keepends=True)[2][:25])  # a crash mid-write of one more record
    j = Journal(path)
    assert j.torn and len(j.records) == 7
    j.append("end", "end", {"t": 1})
    j.close()
    again = Journal(path)
    assert not again.torn and [r["k"] for r in again.records][-2:] == ["progress", "end"]


def test_a_damaged_record_before_the_last_refuses_to_open(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    sample(path)
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"100.5", b"100.6")  # the checksum no longer matches
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalCorrupt, match=r"j.jsonl:3: damaged journal record"):
        Journal(path)


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path):
        with pytest.raises(JournalBusy, match="another node is writing this journal"):
            Journal(path)
        assert Journal(path, readonly=True).records == []
    with Journal(path) as j:  # released on close
        j.append("end", "end", {})
    with pytest.raises(ValueError, match="closed or read-only"):
        j.append("x", "x", {})


def test_a_complete_last_line_with_a_bad_checksum_counts_as_torn(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    sample(path)
    data = path.read_bytes()
    path.write_bytes(data[:-3] + b"}}\n")
    j = Journal(path)
    assert j.torn and len(j.records) == 6


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(min_value=0, max_value=10_000))
def test_a_crash_at_any_byte_leaves_a_prefix_of_the_records(tmp_path_factory: pytest.TempPathFactory, cut: int) -> None:
    folder = tmp_path_factory.mktemp("cut")
    full = folder / "full.jsonl"
    sample(full)
    data = full.read_bytes()
    cut %= len(data) + 1
    torn = folder / "torn.jsonl"
    torn.write_bytes(data[:cut])
    want = Journal(full, readonly=True).records
    got = Journal(torn, readonly=True).records
    assert got == want[: len(got)]
    assert len(got) == data[:cut].count(b"\n")
