"""Text outputs of `pivotal pivots compute`: a rich table, CSV rows (one pivot each) or JSON (one object per level/kind)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.table import Table

if TYPE_CHECKING:  # pivotal.data loads pandas/pyarrow: kept off the `--help` path
    from pivotal.data.candles import Candles
    from pivotal.structure.types import PivotEvent, PivotSet

CSV_COLUMNS = (
    "label",
    "level",
    "kind",
    "index",
    "ts",
    "time",
    "price",
    "confirmed_at",
    "confirmed_ts",
    "confirmed_time",
    "lag_bars",
)


def iso(ms: int | None) -> str:
    if ms is None:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(ms: int | None) -> str:
    return iso(ms)[:16].replace("T", " ")


def _row(e: PivotEvent) -> dict[str, Any]:
    return {
        "label": e.label,
        "level": e.level,
        "kind": e.kind,
        "index": e.index,
        "ts": e.ts,
        "time": iso(e.ts),
        "price": e.price,
        "confirmed_at": e.confirmed_at,
        "confirmed_ts": e.confirmed_ts,
        "confirmed_time": iso(e.confirmed_ts),
        "lag_bars": e.confirmed_at - e.index,
    }


def render_csv(events: list[PivotEvent]) -> str:
    """Every pivot in emission order (confirmed_at, level, outside-bar order)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for e in events:
        writer.writerow(_row(e))
    return buffer.getvalue()


def render_json(pivots: PivotSet, bars: Candles, tf_ms: int | None, source: str) -> str:
    """``{"source", "timeframe", "bars", "params", "levels": [{level, kind, label, pivots: [[index, price, confirmed_at]],
    ts, confirmed_ts}]}``; ts are bar open times, confirmed_ts the close time of the confirming bar (epoch ms)."""
    levels = []
    for level in range(1, len(pivots.highs) + 1):
        for kind in ("H", "L"):
            arr = pivots.get(level, kind)
            confirmed_ts = [int(bars.ts[c]) + tf_ms for c in arr.confirmed_at] if tf_ms else None
            levels.append(
                {
                    "level": level,
                    "kind": kind,
                    "label": f"L{level}{kind}",
                    "pivots": [[i, p, c] for i, p, c in arr.as_tuples()],
                    "ts": [int(bars.ts[i]) for i in arr.index],
                    "confirmed_ts": confirmed_ts,
                }
            )
    document = {
        "source": source,
        "timeframe": bars.timeframe or None,
        "bars": len(bars),
        "first_ts": int(bars.ts[0]) if len(bars) else None,
        "last_ts": int(bars.ts[-1]) if len(bars) else None,
        "params": asdict(pivots.params),
        "levels": levels,
    }
    return json.dumps(document, indent=1)


def render_table(events: list[PivotEvent], pivots: PivotSet, limit: int, source: str) -> list[Table]:
    """A count per level/kind and the most recent ``limit`` pivots (0 = all)."""
    counts = Table(title=f"pivots of {source}", show_lines=False)
    counts.add_column("level", justify="right")
    for name in ("highs", "lows", "median lag (bars)", "max lag (bars)"):
        counts.add_column(name, justify="right")
    for level in range(1, len(pivots.highs) + 1):
        highs, lows = pivots.get(level, "H"), pivots.get(level, "L")
        lags = sorted([c - i for i, _, c in highs.as_tuples() + lows.as_tuples()])
        median = str(lags[len(lags) // 2]) if lags else "-"
        counts.add_row(f"L{level}", str(len(highs)), str(len(lows)), median, str(lags[-1]) if lags else "-")
    shown = events if limit == 0 else events[-limit:]
    title = f"last {len(shown)} of {len(events)} pivots, in the order they became known"
    listing = Table(title=title)
    listing.add_column("label")
    listing.add_column("bar", justify="right")
    listing.add_column("time (UTC)", no_wrap=True)
    listing.add_column("price", justify="right")
    # short headers: the table fits 80 columns (a terminal or a pipe) with nothing cut off
    listing.add_column("conf. bar", justify="right")
    listing.add_column("confirmed (UTC)", no_wrap=True)
    listing.add_column("lag", justify="right")
    for e in shown:
        listing.add_row(
            e.label,
            str(e.index),
            _short(e.ts),
            f"{e.price:g}",
            str(e.confirmed_at),
            _short(e.confirmed_ts),
            str(e.confirmed_at - e.index),
        )
    return [counts, listing]
