"""Live pivot training samples (reference ``live-pivot-training.txt``): confirmed L2 pivots become training samples.

A pure module: fed the pivot events that the runtime's incremental detector (``structure.incremental``) confirms, and
polled with the clock's time; it decides *what* to train on and when, and a trainer (later out of process) does the
training. Rules, as the reference states them:

- pivots of the configured levels (default L2) on the configured timeframes (default 1s and 1m; 1h/1d by config);
- a **high** pivot makes a **SHORT** sample (action SELL), a **low** pivot a **LONG** sample (action BUY), in the
  reference's sample structure (``LivePivotSample.to_dict``), entry at the pivot price, holding period 300 s;
- checked every ``check_interval_ms`` (5 s): a poll earlier than that returns nothing;
- at least ``min_spacing_ms`` (60 s) between trainings per timeframe: pivots confirmed meanwhile wait (kept, not
  dropped) and go into the next training of that timeframe together;
- the last ``dedupe`` (1,000) trained pivots are remembered; a pivot offered again is not trained twice;
- statistics: pivots trained in total and per timeframe, last training time per timeframe, last loss reported.

Causality: a sample's input is as of the pivot bar's close (``as_of``) and its label is known when the pivot is
confirmed (``known_at`` = the confirming bar's close); nothing is emitted before ``known_at``. ``enabled=False`` turns
it off for a run; a sampler belongs to one model and symbol, so it is turned off per model by that model's config.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pivotal.core.timeframes import timeframe_ms
from pivotal.structure.types import PivotEvent


@dataclass(frozen=True)
class LivePivotConfig:
    enabled: bool = True  # enable_live_training
    timeframes: tuple[str, ...] = ("1s", "1m")
    levels: tuple[int, ...] = (2,)
    check_interval_ms: int = 5_000
    min_spacing_ms: int = 60_000
    dedupe: int = 1_000
    holding_period_s: int = 300
    context_timeframes: tuple[str, ...] = ("1s", "1m", "1h", "1d")
    candles_per_timeframe: int = 200

    def __post_init__(self) -> None:
        for tf in (*self.timeframes, *self.context_timeframes):
            timeframe_ms(tf)
        if not self.levels or min(self.levels) < 1:
            raise ValueError(f"live pivot training: levels must be >= 1 (got {self.levels})")
        if self.check_interval_ms < 0 or self.min_spacing_ms < 0 or self.dedupe < 1:
            raise ValueError("live pivot training: check_interval_ms and min_spacing_ms must be >= 0, dedupe >= 1")


@dataclass(frozen=True)
class LivePivotSample:
    """One training sample from one confirmed pivot."""

    symbol: str
    timeframe: str
    level: int
    kind: str  # "H" or "L"
    pivot_ts: int  # open time of the pivot bar
    as_of: int  # close of the pivot bar: the input's as-of time
    known_at: int  # close of the bar that confirmed the pivot
    price: float
    holding_period_s: int
    context_timeframes: tuple[str, ...]
    candles_per_timeframe: int

    @property
    def action(self) -> str:
        return "SELL" if self.kind == "H" else "BUY"

    @property
    def direction(self) -> str:
        return "SHORT" if self.kind == "H" else "LONG"

    @property
    def key(self) -> tuple[str, str, int, str, int]:
        return (self.symbol, self.timeframe, self.level, self.kind, self.pivot_ts)

    def to_dict(self) -> dict[str, Any]:
        """The reference's sample structure (plus ``known_at`` / ``as_of`` in epoch ms)."""
        iso = datetime.fromtimestamp(self.pivot_ts / 1000, UTC).isoformat()
        return {
            "test_case_id": f"live_pivot_{self.symbol}_{self.timeframe}_{iso[:19]}",
            "symbol": self.symbol,
            "timestamp": iso,
            "as_of": self.as_of,
            "known_at": self.known_at,
            "action": self.action,
            "expected_outcome": {
                "direction": self.direction,
                "entry_price": self.price,
                "exit_price": None,
                "profit_loss_pct": 0.0,
                "holding_period_seconds": self.holding_period_s,
            },
            "training_config": {
                "timeframes": list(self.context_timeframes),
                "candles_per_timeframe": self.candles_per_timeframe,
            },
            "annotation_metadata": {
                "source": "live_pivot_detection",
                "pivot_level": f"L{self.level}",
                "pivot_type": "high" if self.kind == "H" else "low",
                "confidence": 1.0,  # a confirmed pivot; the reference's 0.85 was a constant
            },
        }


@dataclass(frozen=True)
class Training:
    """What a poll hands to the trainer: the samples of one timeframe, trained together at ``at``."""

    timeframe: str
    at: int
    samples: tuple[LivePivotSample, ...]


@dataclass
class _Counters:
    trained: int = 0
    trainings: int = 0
    last_training: int | None = None
    last_loss: float | None = None
    offered: int = 0


@dataclass
class LivePivotSampler:
    """Confirmed pivots in (``offer``), trainings out (``poll``); see the module doc for the rules."""

    symbol: str
    config: LivePivotConfig = field(default_factory=LivePivotConfig)

    def __post_init__(self) -> None:
        self._queue: dict[str, list[LivePivotSample]] = {tf: [] for tf in self.config.timeframes}
        self._recent: deque[tuple[str, str, int, str, int]] = deque(maxlen=self.config.dedupe)
        self._recent_set: set[tuple[str, str, int, str, int]] = set()
        self._counters = {tf: _Counters() for tf in self.config.timeframes}
        self._last_check: int | None = None
        self.duplicates = 0

    def offer(self, timeframe: str, event: PivotEvent) -> bool:
        """A pivot confirmed on ``timeframe``; True when it is queued for training (right level and timeframe, enabled,
        not trained or queued already). The event must carry ``ts`` and ``confirmed_ts`` (feed the detector times)."""
        cfg = self.config
        if not cfg.enabled or timeframe not in self._queue or event.level not in cfg.levels:
            return False
        if event.ts is None or event.confirmed_ts is None:
            raise ValueError(f"pivot {event.label} on {timeframe} has no times; pass ts= and close_ts= to the detector's on_bar")
        self._counters[timeframe].offered += 1
        sample = LivePivotSample(
            self.symbol, timeframe, event.level, event.kind, int(event.ts), int(event.ts) + timeframe_ms(timeframe),
            int(event.confirmed_ts), float(event.price), cfg.holding_period_s, cfg.context_timeframes,
            cfg.candles_per_timeframe,
        )  # fmt: skip
        if sample.key in self._recent_set or any(s.key == sample.key for s in self._queue[timeframe]):
            self.duplicates += 1
            return False
        self._queue[timeframe].append(sample)
        return True

    def poll(self, now_ms: int) -> list[Training]:
        """The trainings due at ``now_ms``: at most one per timeframe, none within ``check_interval_ms`` of the last
        check or ``min_spacing_ms`` of that timeframe's last training; samples not yet known at now wait."""
        cfg = self.config
        if not cfg.enabled or (self._last_check is not None and now_ms - self._last_check < cfg.check_interval_ms):
            return []
        self._last_check = now_ms
        out: list[Training] = []
        for tf, queue in self._queue.items():
            counters = self._counters[tf]
            ready = [s for s in queue if s.known_at <= now_ms]
            if not ready or (counters.last_training is not None and now_ms - counters.last_training < cfg.min_spacing_ms):
                continue
            self._queue[tf] = [s for s in queue if s.known_at > now_ms]
            for s in ready:
                if len(self._recent) == self._recent.maxlen:
                    self._recent_set.discard(self._recent[0])
                self._recent.append(s.key)
                self._recent_set.add(s.key)
            counters.trained += len(ready)
            counters.trainings += 1
            counters.last_training = now_ms
            out.append(Training(tf, now_ms, tuple(ready)))
        return out

    def report_loss(self, timeframe: str, loss: float) -> None:
        """The trainer's loss of the last training on ``timeframe`` (for the statistics)."""
        self._counters[timeframe].last_loss = float(loss)

    def stats(self) -> dict[str, Any]:
        """The reference's statistics, per timeframe, plus waiting and duplicate counts."""
        out: dict[str, Any] = {
            "enabled": self.config.enabled,
            "total_trained_pivots": sum(c.trained for c in self._counters.values()),
            "duplicates_skipped": self.duplicates,
            "remembered_pivots": len(self._recent),
        }
        for tf, c in self._counters.items():
            out[f"trained_pivots_{tf}"] = c.trained
            out[f"trainings_{tf}"] = c.trainings
            out[f"last_training_{tf}"] = c.last_training
            out[f"last_loss_{tf}"] = c.last_loss
            out[f"waiting_{tf}"] = len(self._queue[tf])
            out[f"pivot_history_{tf}"] = c.offered
        return out
