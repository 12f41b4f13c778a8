"""The parity harness: the same strategy and bars through the backtest use case (``services.backtest.run_backtest``),
a replay through a trading node (``runtime.runner.execute``) and, given the URL of an exchange streaming the same
recorded data (the local test exchange, which ``pivotal parity --paper`` starts), a paper session through the live
feed (``runtime.runner.execute_live``), plus any other trade list (a paper run's ``--trades-out`` file), compared
trade by trade. The paper side's bars are compared with the reference's too: a bar the feed lost, added or changed
is named, since it explains the trades that differ after it.

Why: backtest, replay and paper must not disagree, and when they do the first question is *where* and *why*. Trade
lists are aligned on entry time (the one value every mode shares, whatever bar numbering its series has); the report
names the first divergence (a missing or extra trade, a different decision, entry, fill price, exit or net return)
with both sides' bar numbers, times and values, and for a net-return difference with identical fills the fee each
side implies (``SimulatedVenue.net_return``: gross − fee·(1 + exit/entry)). Equality is exact (floats by value, NaN
equal to NaN); identical lists have equal sha256 fingerprints (``runtime.node.trade_fingerprint``)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pivotal.core.errors import UserInputError
from pivotal.core.events import BarClosed, MarketEvent
from pivotal.core.timeframes import TIMEFRAMES
from pivotal.core.trades import TRADE_COLUMNS, Trade, TradeList
from pivotal.data.candles import Candles
from pivotal.runtime.node import trade_fingerprint
from pivotal.runtime.runner import execute, execute_live
from pivotal.services.backtest import CandleSource, run_backtest
from pivotal.services.run import PreparedRun, prepare

__all__ = [
    "Divergence",
    "PaperSession",
    "ParityReport",
    "Row",
    "bar_divergence",
    "compare_trades",
    "load_trade_list",
    "parity_report",
    "run_paper",
    "run_parity",
]

# Field groups in the order a divergence is explained: the decision first, then its fills, then the money.
DECISION = ("direction", "signal_bar", "level")
ENTRY = ("entry_bar", "entry_fill", "stop", "target")
EXIT = ("exit_time", "exit_bar", "exit_reason", "exit_fill")
KINDS = ("missing trade", "extra trade", "entry time", "decision", "entry", "exit", "net return", "bar numbering")
_INT_FIELDS = {f.name for f in fields(Trade) if f.type in ("int", int)}


def load_trade_list(path: Path) -> TradeList:
    """A trade list written by ``TradeList.write`` (``pivotal backtest`` / ``pivotal run --trades-out``: .csv or
    .json); one line naming the file when it is not one."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            rows = json.loads(path.read_text())
        elif suffix == ".csv":
            rows = pd.read_csv(path, float_precision="round_trip").to_dict("records") if path.stat().st_size else []
        else:
            raise UserInputError(f"{path}: unsupported trade list format {suffix!r}; use .csv or .json")
        if not isinstance(rows, list):
            raise ValueError("expected a list of trades")
        return TradeList(tuple(_trade(row) for row in rows))
    except UserInputError:
        raise
    except (OSError, ValueError, KeyError, TypeError, pd.errors.ParserError) as exc:
        raise UserInputError(f"{path}: not a trade list ({exc}); write one with --trades-out") from None


def _trade(row: dict[str, Any]) -> Trade:
    missing = [c for c in TRADE_COLUMNS if c not in row]
    if missing:
        raise KeyError(f"missing column(s) {', '.join(missing)}")
    values: dict[str, Any] = {}
    for name in TRADE_COLUMNS:
        v = row[name]
        if name == "exit_reason":
            values[name] = str(v)
        elif name in _INT_FIELDS:
            values[name] = int(v)
        else:
            values[name] = math.nan if v is None else float(v)
    return Trade(**values)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def _num(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def implied_fee(t: Trade) -> float:
    """The fee rate per side that ``t``'s fills and net return imply (gross − net = fee · (1 + exit/entry))."""
    ef, xf = t.entry_fill, t.exit_fill
    gross = (xf - ef) / ef if t.direction > 0 else (ef - xf) / ef
    return (gross - t.net_return) / (1.0 + xf / ef)


@dataclass(frozen=True)
class Divergence:
    """Why one aligned pair of trades differs: ``kind`` (one of ``KINDS``), the fields that differ with both values,
    and a sentence naming the bars, times and values."""

    kind: str
    why: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "why": self.why, "fields": {k: [_num(a), _num(b)] for k, (a, b) in self.fields.items()}}


@dataclass(frozen=True)
class Row:
    """One line of the trade-by-trade diff: the reference's trade ``a`` (index ``ia``) beside the other's ``b``."""

    ia: int | None
    ib: int | None
    a: Trade | None
    b: Trade | None
    divergence: Divergence | None  # None: identical

    @property
    def time(self) -> int:
        t = self.a if self.a is not None else self.b
        assert t is not None
        return t.entry_time

    def to_dict(self) -> dict[str, Any]:
        return {
            "reference_index": self.ia, "other_index": self.ib, "entry_time": _iso(self.time),
            "status": "identical" if self.divergence is None else self.divergence.kind,
            **({} if self.divergence is None else {"divergence": self.divergence.to_dict()}),
        }  # fmt: skip


def _explain(a: Trade, b: Trade, names: tuple[str, str]) -> Divergence | None:
    """The first reason two trades with the same entry time differ (decision, entry, exit, money), or None."""
    na, nb = names
    diff = {f: (getattr(a, f), getattr(b, f)) for f in TRADE_COLUMNS if not _same(getattr(a, f), getattr(b, f))}
    if not diff:
        return None
    when = f"trade entered {_iso(a.entry_time)}"
    if a.direction != b.direction:
        return Divergence("decision", f"{when}: {na} is {a.side}, {nb} is {b.side} (opposite decision)", diff)
    decision = {k: v for k, v in diff.items() if k in DECISION}
    if "signal_bar" in decision and a.entry_bar - a.signal_bar == b.entry_bar - b.signal_bar:
        del decision["signal_bar"]  # decided the same bar before the same entry time: only the numbering differs
    if decision:
        what = ", ".join(f"{k} {x!r} vs {y!r}" for k, (x, y) in decision.items())
        return Divergence("decision", f"{when}: the signal differs ({na} vs {nb}: {what})", diff)
    if "entry_fill" in diff:
        x, y = diff["entry_fill"]
        return Divergence(
            "entry", f"{when} (bar {a.entry_bar} vs {b.entry_bar}): entry fill {x!r} in {na} vs {y!r} in {nb} "
            f"(Δ {y - x:+.10g}, {(y / x - 1) * 1e4:+.3f} bp): a different fill model or slippage", diff)  # fmt: skip
    entry = {k: v for k, v in diff.items() if k in ("stop", "target")}
    if entry:
        what = ", ".join(f"{k} {x!r} vs {y!r}" for k, (x, y) in entry.items())
        return Divergence("entry", f"{when}: same entry fill, different bracket ({na} vs {nb}: {what})", diff)
    if "exit_time" in diff or "exit_reason" in diff:
        return Divergence(
            "exit", f"{when}: {na} exits {a.exit_reason} at {_iso(a.exit_time)} (bar {a.exit_bar}) for {a.exit_fill!r}, "
            f"{nb} exits {b.exit_reason} at {_iso(b.exit_time)} (bar {b.exit_bar}) for {b.exit_fill!r}", diff)  # fmt: skip
    if "exit_fill" in diff:
        x, y = diff["exit_fill"]
        return Divergence(
            "exit", f"{when}: same exit {a.exit_reason} at {_iso(a.exit_time)}, exit fill {x!r} in {na} vs {y!r} in {nb} "
            f"(Δ {y - x:+.10g}): a different fill model or slippage", diff)  # fmt: skip
    if "net_return" in diff:
        x, y = diff["net_return"]
        return Divergence(
            "net return", f"{when}: identical fills, net return {x!r} in {na} vs {y!r} in {nb}: a different fee "
            f"(implied fee per side {implied_fee(a):.6g} vs {implied_fee(b):.6g})", diff)  # fmt: skip
    bars = ", ".join(f"{k} {x} vs {y}" for k, (x, y) in diff.items())
    return Divergence(
        "bar numbering", f"{when}: same times and prices, bar numbers differ ({bars}): the series start at different "
        "bars or one has a bar the other lacks (a dropped bar)", diff)  # fmt: skip


def compare_trades(
    reference: Sequence[Trade], other: Sequence[Trade], names: tuple[str, str] = ("backtest", "replay")
) -> list[Row]:
    """Align two trade lists on entry time (both in time order) and explain every pair that differs.

    A trade with no counterpart at its entry time is missing (only in ``reference``) or extra (only in ``other``);
    a missing and an extra trade of the same direction side by side are one trade entered at different times."""
    na, nb = names
    rows: list[Row] = []
    i = j = 0
    while i < len(reference) or j < len(other):
        a = reference[i] if i < len(reference) else None
        b = other[j] if j < len(other) else None
        if a is not None and b is not None and a.entry_time == b.entry_time:
            rows.append(Row(i, j, a, b, _explain(a, b, names)))
            i, j = i + 1, j + 1
        elif b is None or (a is not None and a.entry_time < b.entry_time):
            assert a is not None
            why = f"{na} trade {i} ({_brief(a)}) has no trade in {nb}"
            rows.append(Row(i, None, a, None, Divergence("missing trade", why)))
            i += 1
        else:
            why = f"{nb} trade {j} ({_brief(b)}) has no trade in {na}"
            rows.append(Row(None, j, None, b, Divergence("extra trade", why)))
            j += 1
    return _pair_shifted(rows, names)


def _brief(t: Trade) -> str:
    return f"{t.side}, entered {_iso(t.entry_time)} at bar {t.entry_bar}, fill {t.entry_fill!r}, exit {t.exit_reason}"


def _pair_shifted(rows: list[Row], names: tuple[str, str]) -> list[Row]:
    """Merge a missing and an extra trade that sit side by side with the same direction into one "entry time" row."""
    na, nb = names
    out: list[Row] = []
    k = 0
    while k < len(rows):
        r, s = rows[k], rows[k + 1] if k + 1 < len(rows) else None
        if (
            s is not None and r.divergence is not None and s.divergence is not None
            and {r.divergence.kind, s.divergence.kind} == {"missing trade", "extra trade"}
        ):  # fmt: skip
            a = r.a if r.a is not None else s.a
            b = r.b if r.b is not None else s.b
            assert a is not None and b is not None
            if a.direction == b.direction:
                diff = {f: (getattr(a, f), getattr(b, f)) for f in TRADE_COLUMNS if not _same(getattr(a, f), getattr(b, f))}
                why = (
                    f"{a.side} trade entered at bar {a.entry_bar} ({_iso(a.entry_time)}, signal bar {a.signal_bar}) in {na}, "
                    f"at bar {b.entry_bar} ({_iso(b.entry_time)}, signal bar {b.signal_bar}) in {nb}"
                )
                ia, ib = (r.ia, s.ib) if r.a is not None else (s.ia, r.ib)
                out.append(Row(ia, ib, a, b, Divergence("entry time", why, diff)))
                k += 2
                continue
        out.append(r)
        k += 1
    return out


@dataclass(frozen=True)
class ParityReport:
    """Each side's trade count and fingerprint, and its trade-by-trade diff against the reference (the first side)."""

    names: tuple[str, ...]
    fingerprints: tuple[str, ...]
    counts: tuple[int, ...]
    diffs: dict[str, list[Row]]  # other side's name -> rows against the reference
    context: dict[str, Any] = field(default_factory=dict)  # what ran on what (strategy, params, source, costs)
    notes: dict[str, str] = field(default_factory=dict)  # side -> what else explains it (the paper session's bars)

    @property
    def identical(self) -> bool:
        return len(set(self.fingerprints)) == 1

    def first_divergence(self, name: str) -> Row | None:
        return next((r for r in self.diffs[name] if r.divergence is not None), None)

    def status(self, name: str) -> str:
        """identical, same trades but bar numbers, same decisions (only fills or money differ), or different decisions."""
        rows = [r for r in self.diffs[name] if r.divergence is not None]
        if not rows:
            return "identical"
        kinds = {r.divergence.kind for r in rows if r.divergence is not None}
        if kinds == {"bar numbering"}:
            return "same trades, different bar numbering"
        if kinds <= {"entry", "exit", "net return", "bar numbering"}:
            return "same decisions, different fills"
        return "different decisions"

    def to_dict(self) -> dict[str, Any]:
        each = zip(self.names, self.counts, self.fingerprints, strict=True)
        sides = [{"name": n, "trades": c, "sha256": f} for n, c, f in each]
        comparisons = []
        for name, rows in self.diffs.items():
            first = self.first_divergence(name)
            comparisons.append({
                "reference": self.names[0], "other": name, "status": self.status(name),
                "differing_rows": sum(r.divergence is not None for r in rows),
                **({"note": self.notes[name]} if name in self.notes else {}),
                "first_divergence": None if first is None else first.to_dict(),
                "rows": [r.to_dict() for r in rows if r.divergence is not None],
            })  # fmt: skip
        return {"identical": self.identical, **self.context, "sides": sides, "comparisons": comparisons}

    def text(self, limit: int = 10) -> str:
        """The report for a terminal: fingerprints, then per comparison its status, first divergence and the next
        differing rows (at most ``limit``)."""
        each = zip(self.names, self.counts, self.fingerprints, strict=True)
        lines = [f"{n:>10}: {c:5d} trades  sha256 {f}" for n, c, f in each]
        for name, rows in self.diffs.items():
            status = self.status(name)
            lines.append(f"{self.names[0]} vs {name}: {status}")
            if name in self.notes:
                lines.append(f"  {name}: {self.notes[name]}")
            bad = [r for r in rows if r.divergence is not None]
            for n, r in enumerate(bad[:limit]):
                assert r.divergence is not None
                head = "first divergence" if n == 0 else "then"
                lines.append(f"  {head}: [{r.divergence.kind}] {r.divergence.why}")
            if len(bad) > limit:
                lines.append(f"  ... and {len(bad) - limit} more differing rows (--json for all)")
        return "\n".join(lines)


def parity_report(
    sides: Mapping[str, Sequence[Trade]], context: dict[str, Any] | None = None, notes: Mapping[str, str] | None = None
) -> ParityReport:
    """Compare every side with the first (the reference); ``sides`` maps a name to its trade list, in order."""
    if len(sides) < 2:
        raise UserInputError("parity needs at least two trade lists to compare")
    names = tuple(sides)
    lists = [tuple(sides[n]) for n in names]
    diffs = {n: compare_trades(lists[0], lists[k], (names[0], n)) for k, n in enumerate(names) if k > 0}
    return ParityReport(
        names,
        tuple(trade_fingerprint(t) for t in lists),
        tuple(len(t) for t in lists),
        diffs,
        dict(context or {}),
        dict(notes or {}),
    )


@dataclass(frozen=True)
class PaperSession:
    """A finished paper session: its trades, the closed bars the live feed delivered (open time, o, h, l, c, v) and
    the node's event count."""

    trades: tuple[Trade, ...]
    bars: tuple[tuple[int, float, float, float, float, float], ...]
    events: int


def run_paper(prepared: PreparedRun, rest_url: str, *, ws_url: str | None = None) -> PaperSession:
    """``prepared``'s strategy on its bars' span as ``pivotal run --mode paper`` against the exchange at ``rest_url``
    (Binance's API; in the harness the local test exchange replaying the same recorded data from the first bar's open):
    the live feed backfills and streams the closed bars, the node trades them with the simulated venue, the session
    ends at the last bar's close. No journal: a fresh session."""
    req, bars = prepared.request, prepared.bars
    if not len(bars):
        raise UserInputError("parity --paper: the series has no bars in the window")
    tf_ms = TIMEFRAMES[bars.timeframe]
    start, end = int(bars.ts[0]), int(bars.ts[-1]) + tf_ms
    source = CandleSource(None, bars.exchange, bars.symbol, bars.timeframe, start, end)
    paper = prepare(replace(req, mode="paper", source=source, journal=None, audit=None, risk=None,
                            venue_exchange="binance", rest_url=rest_url, ws_url=ws_url))  # fmt: skip
    seen: list[tuple[int, float, float, float, float, float]] = []

    def observe(event: MarketEvent) -> None:
        if isinstance(event, BarClosed) and event.bar.symbol == bars.symbol and event.bar.timeframe == bars.timeframe:
            b = event.bar
            seen.append((b.ts, b.open, b.high, b.low, b.close, b.volume))

    outcome = execute_live(paper, observer=observe)
    return PaperSession(outcome.run.result.trades.trades, tuple(seen), outcome.events)


def bar_divergence(reference: Candles, got: Sequence[tuple[int, float, float, float, float, float]], name: str) -> str:
    """The first bar where ``got`` (a session's closed bars) differs from ``reference``: missing, extra or other
    values; or that every bar is the same."""
    ref = list(
        zip(
            *(reference.ts.tolist(), *(getattr(reference, c).tolist() for c in ("open", "high", "low", "close", "volume"))),
            strict=True,
        )
    )
    i = 0
    while i < len(ref) and i < len(got) and tuple(ref[i]) == tuple(got[i]):
        i += 1
    if i == len(ref) == len(got):
        return f"the same {len(ref)} closed bars as the reference"
    head = f"{len(got)} closed bars vs {len(ref)}; first difference at bar {i}"
    if i == len(got):
        return f"{head}: {name} ends before the reference's bar of {_iso(int(ref[i][0]))}"
    if i == len(ref):
        return f"{head}: {name} has an extra bar at {_iso(int(got[i][0]))}"
    a, b = ref[i], got[i]
    if a[0] != b[0]:
        lost = a[0] < b[0]
        what = f"lacks the bar of {_iso(int(a[0]))}" if lost else f"has an extra bar at {_iso(int(b[0]))}"
        return f"{head}: {name} {what} (a {'lost' if lost else 'duplicated or invented'} bar)"
    fields = ", ".join(
        f"{n} {x!r} vs {y!r}" for n, x, y in zip(("open", "high", "low", "close", "volume"), a[1:], b[1:], strict=True) if x != y
    )
    return f"{head}: the bar of {_iso(int(a[0]))} has other values ({fields}): an open candle taken for closed, or other data"


def run_parity(
    prepared: PreparedRun, extra: Mapping[str, Sequence[Trade]] | None = None, *, paper_url: str | None = None
) -> ParityReport:
    """Run ``prepared`` through the backtest use case and a speed-0 replay through a trading node
    (``runtime.runner.execute``); with ``paper_url`` also a paper session against the exchange there (``run_paper``:
    it must stream the same recorded bars); ``extra`` adds other trade lists (a paper run's file) to compare."""
    req, bars = prepared.request, prepared.bars
    if req.risk is not None:
        raise UserInputError("parity compares runs without a risk engine (the backtest use case has none)")
    bt = run_backtest(bars, req.strategy, prepared.params, fee_rate=req.fee_rate, slippage=req.slippage,
                      source=req.source.describe(), capital=req.capital)  # fmt: skip
    replay_req = replace(req, mode="replay", speed=0.0, journal=None)
    rp = execute(replace(prepared, request=replay_req)).run
    context = {
        "strategy": req.strategy, "params": prepared.params, "source": req.source.describe(), "bars": len(bars),
        "fee_rate": req.fee_rate, "slippage": req.slippage,
    }  # fmt: skip
    sides: dict[str, Sequence[Trade]] = {"backtest": bt.result.trades.trades, "replay": rp.result.trades.trades}
    notes: dict[str, str] = {}
    if paper_url is not None:
        session = run_paper(prepared, paper_url)
        sides["paper"] = session.trades
        notes["paper"] = f"a paper session through the live feed; {bar_divergence(bars, session.bars, 'paper')}"
    for name, trades in (extra or {}).items():
        if name in sides:
            raise UserInputError(f"trade list name {name!r} is taken; pick another")
        sides[name] = trades
    return parity_report(sides, context, notes)
