"""Issue #9: how one downloaded page is split into stored bars and quarantined bars (hand-written rows, hermetic)."""

from __future__ import annotations

import json

import pytest

from pivotal.data.download import _Page, _parse_page

pytestmark = pytest.mark.unit

T0 = 1_709_251_200_000  # 2024-03-01 00:00 UTC
M = 60_000
NOW = T0 + 10 * M + 30_000  # the bar at T0 + 10 min is still open
LABELS = ("binance", "BTC/USDT", "1m")


def bar(i: int, o: float = 10.0, h: float = 11.0, lo: float = 9.0, c: float = 10.5, v: float = 1.0) -> list[object]:
    return [T0 + i * M, o, h, lo, c, v]


def parse(rows: list[list[object]], cursor: int = T0, end: int = NOW) -> _Page | None:
    return _parse_page(rows, cursor, end, NOW, M, LABELS)


def test_good_bars_in_range_are_kept_and_the_open_bar_is_not() -> None:
    page = parse([bar(i) for i in range(11)])
    assert page is not None and page.bad == []
    assert page.candles.ts.tolist() == [T0 + i * M for i in range(10)] and page.last_ts == T0 + 9 * M


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (bar(3, h=8.0), "field 'high': value 8.0 is below open or close"),
        (bar(3, o=-1.0), "field 'open': value -1.0 is not a positive price"),
        (bar(3, v=float("nan")), "field 'volume': value nan is not finite"),
        ([T0 + 3 * M + 1, 10.0, 11.0, 9.0, 10.5, 1.0], f"open time {T0 + 3 * M + 1} is not aligned to the 1m grid"),
        ([None, 10.0, 11.0, 9.0, 10.5, 1.0], "open time is not an integer epoch ms"),
        ([T0 + 3 * M, "x", 11.0, 9.0, 10.5, 1.0], "field 'open': value nan is not finite"),
        ([T0 + 3 * M, 10.0], "expected [ts, open, high, low, close, volume]"),
    ],
)
def test_a_bad_bar_is_quarantined_with_its_reason_and_the_rest_kept(row: list[object], reason: str) -> None:
    rows = [bar(i) for i in range(6)]
    rows[3] = row
    page = parse(rows)
    assert page is not None
    [bad] = page.bad
    assert bad.reason.startswith(reason) and bad.raw == json.dumps(row)
    assert page.candles.ts.tolist() == [T0 + i * M for i in (0, 1, 2, 4, 5)]


def test_duplicates_exact_dropped_conflicting_quarantined() -> None:
    page = parse([bar(0), bar(1), bar(1), bar(1, c=10.7), bar(2)])
    assert page is not None
    assert page.candles.ts.tolist() == [T0, T0 + M, T0 + 2 * M]
    assert float(page.candles.close[1]) == 10.5  # the first one is kept
    [bad] = page.bad
    assert bad.reason.startswith(f"repeats the bar at {T0 + M} with different values")


def test_nothing_in_range_is_no_page() -> None:
    assert parse([]) is None
    assert parse([bar(10)]) is None  # only the still-open bar
    assert parse([bar(0), bar(1)], cursor=T0 + 5 * M) is None  # only bars before the cursor
    assert parse("<html>maintenance</html>") is None  # type: ignore[arg-type]


def test_a_page_of_only_bad_bars_still_advances() -> None:
    page = parse([bar(0, h=1.0), bar(1, h=1.0)])
    assert page is not None and len(page.candles) == 0 and len(page.bad) == 2 and page.last_ts == T0 + M
