"""Champion / challenger: which checkpoint version of a model serves, decided by a stated test, every decision logged.

**The gate.** A challenger (a newly trained version) replaces the champion (the serving one) only if it has lower
loss on a recent out-of-sample window: samples neither version was trained on (the trainer evaluates both on the
next batch *before* training on it — prequential evaluation). With per-sample differences ``d_i = loss_champion_i -
loss_challenger_i`` over ``n >= min_samples`` samples, the one-sided paired t-test of ``H0: mean(d) <= 0`` against
``H1: mean(d) > 0`` must reject at ``alpha`` (default 0.05). Fewer samples, or a constant difference of zero, is a
refusal with that reason. ``alpha=1.0`` promotes whenever the mean difference is positive.

**The log.** ``PromotionLog``: one append-only JSONL file per model (``<checkpoint root>/.online/<name>/
promotions.jsonl``), each line a promote / refuse / rollback event with the versions, the test statistics and the
reason, fsynced. The serving version is a fold over the log (the last promote or rollback), so there is exactly one
source of truth and history is never rewritten. ``rollback`` serves the version that served before the current one.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from pivotal.core.errors import UserInputError

ONLINE_DIR = ".online"
LOG_FILE = "promotions.jsonl"


@dataclass(frozen=True)
class GateConfig:
    alpha: float = 0.05
    min_samples: int = 20

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0 or self.min_samples < 2:
            raise ValueError(f"gate: alpha must be in (0, 1] and min_samples >= 2 (got {self.alpha}, {self.min_samples})")


@dataclass(frozen=True)
class GateResult:
    promote: bool
    n: int
    mean_diff: float  # mean of champion loss - challenger loss (> 0: challenger better)
    t_stat: float
    p_value: float
    alpha: float
    reason: str


def gate(champion_losses: np.ndarray, challenger_losses: np.ndarray, config: GateConfig = GateConfig()) -> GateResult:
    """The one-sided paired t-test of the module doc on per-sample losses of the same out-of-sample window."""
    a = np.asarray(champion_losses, np.float64)
    b = np.asarray(challenger_losses, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"gate: per-sample losses must be two 1-D arrays of one length (got {a.shape}, {b.shape})")
    keep = np.isfinite(a) & np.isfinite(b)
    d = a[keep] - b[keep]
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    if n < config.min_samples:
        return GateResult(False, n, mean, float("nan"), float("nan"), config.alpha, f"only {n} samples < {config.min_samples}")
    if float(d.std()) == 0.0:
        p = 0.0 if mean > 0 else 1.0
        t = math.inf if mean > 0 else (-math.inf if mean < 0 else 0.0)
    else:
        res = stats.ttest_1samp(d, 0.0, alternative="greater")
        t, p = float(res.statistic), float(res.pvalue)
    promote = mean > 0 and p <= config.alpha
    verdict = "beats" if promote else "does not beat"
    reason = f"challenger {verdict} champion: mean loss diff {mean:.5f}, t {t:.3f}, p {p:.4f} (alpha {config.alpha}, n {n})"
    return GateResult(promote, n, mean, t, p, config.alpha, reason)


@dataclass(frozen=True)
class PromotionEvent:
    """One line of the log. ``action``: promote | refuse | rollback. ``version``: the checkpoint id that serves after a
    promote/rollback, or the refused challenger."""

    name: str
    action: str
    version: str
    previous: str | None
    at_ms: int
    reason: str
    test: dict[str, Any] | None = None
    by: str = "gate"  # gate | manual


def _parse(raw: bytes) -> PromotionEvent | None:
    """One line: an event, or None for a blank line."""
    text = raw.decode()
    return PromotionEvent(**json.loads(text)) if text.strip() else None


_TAIL = 64  # bytes before the read offset that must be unchanged for the cached prefix to stay valid


@dataclass
class _LogState:
    """What was parsed of one log file: complete lines up to ``offset``, the serving version folded over them."""

    ino: int = -1
    offset: int = 0
    lines: int = 0
    events: list[PromotionEvent] = field(default_factory=list)
    serving: str | None = None
    last_bytes: bytes = b""

    def matches(self, handle: Any, ino: int, size: int) -> bool:
        if ino != self.ino or size < self.offset:
            return False
        if not self.offset:
            return True
        handle.seek(self.offset - len(self.last_bytes))
        return bool(handle.read(len(self.last_bytes)) == self.last_bytes)

    def consume(self, raw: bytes, event: PromotionEvent | None) -> None:
        self.offset += len(raw) + 1
        self.lines += 1
        self.last_bytes = (self.last_bytes + raw + b"\n")[-_TAIL:]
        if event is not None:
            self.events.append(event)
            if event.action in ("promote", "rollback"):
                self.serving = event.version


_CACHE: dict[str, _LogState] = {}  # per process, by log path
_CACHE_LOCK = threading.Lock()


class PromotionLog:
    """The append-only promotion log of one model (see the module doc)."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.folder = Path(root) / ONLINE_DIR / name
        self.path = self.folder / LOG_FILE

    def events(self) -> list[PromotionEvent]:
        """Every event, oldest first. A torn last line (a crash mid-append) is ignored; any other bad line is one
        ``UserInputError`` naming the line."""
        state, tail = self._read()
        return state.events + tail

    def _read(self) -> tuple[_LogState, list[PromotionEvent]]:
        """The parsed log, read incrementally: serving polls this on every event, and a long run's log has tens of
        thousands of lines, so only the bytes appended since the last read are parsed (the log is append-only; a
        replaced or rewritten file is detected by inode, size and the last consumed bytes, and parsed again).
        Returns the state (complete lines) and the unterminated last line when it parses (not consumed: it may be
        an append in progress)."""
        key = str(self.path)
        with _CACHE_LOCK:
            try:
                handle = open(self.path, "rb")  # noqa: SIM115 - closed below
            except FileNotFoundError:
                _CACHE.pop(key, None)
                return _LogState(), []
            with handle:
                st = os.fstat(handle.fileno())
                state = _CACHE.get(key)
                if state is None or not state.matches(handle, st.st_ino, st.st_size):
                    state = _LogState(ino=st.st_ino)
                handle.seek(state.offset)
                data = handle.read(st.st_size - state.offset)
            end = data.rfind(b"\n") + 1
            lines, rest = data[:end].split(b"\n")[:-1], data[end:]
            for i, raw in enumerate(lines):
                try:
                    event = _parse(raw)
                except (ValueError, TypeError) as exc:
                    if i == len(lines) - 1 and not rest.strip():  # a torn last line from a crash: ignore it
                        break
                    raise UserInputError(
                        f"{self.path} line {state.lines + 1}: not a promotion event ({exc}); restore it from a backup"
                    ) from None
                state.consume(raw, event)
            _CACHE[key] = state
            tail: list[PromotionEvent] = []
            if rest.strip():
                try:
                    parsed = _parse(rest)
                except (ValueError, TypeError):
                    parsed = None  # a torn last line: ignored
                if parsed is not None:
                    tail.append(parsed)
            return state, tail

    def serving(self) -> str | None:
        """The version that serves now (None before the first promotion)."""
        state, tail = self._read()
        current = state.serving
        for event in tail:
            if event.action in ("promote", "rollback"):
                current = event.version
        return current

    def history(self) -> list[str]:
        """Versions that served, oldest first (a rollback pops the current one)."""
        stack: list[str] = []
        for event in self.events():
            if event.action == "promote":
                stack.append(event.version)
            elif event.action == "rollback" and stack:
                stack.pop()
        return stack

    def append(self, event: PromotionEvent) -> PromotionEvent:
        self.folder.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(event), sort_keys=True, default=_json_default) + "\n"
        with open(self.path, "a") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        return event

    @contextmanager
    def locked(self) -> Iterator[PromotionLog]:
        """Hold the log's writer lock: a decision reads the serving version and appends under one lock."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def decide(self, challenger: str, result: GateResult, now_ms: int | None = None) -> PromotionEvent:
        """Log the gate's verdict on ``challenger``: promote (it serves now) or refuse."""
        with self.locked():
            previous = self.serving()
            action = "promote" if result.promote else "refuse"
            return self.append(
                PromotionEvent(self.name, action, challenger, previous, _now(now_ms), result.reason, asdict(result))
            )

    def promote(self, version: str, reason: str = "manual promotion", now_ms: int | None = None) -> PromotionEvent:
        """Serve ``version`` now, without the gate (``pivotal models promote``; the first version of a model)."""
        with self.locked():
            return self.append(
                PromotionEvent(self.name, "promote", version, self.serving(), _now(now_ms), reason, None, "manual")
            )

    def rollback(
        self, reason: str = "manual rollback", now_ms: int | None = None, stored: Callable[[str], bool] | None = None
    ) -> PromotionEvent:
        """Serve the version that served before the current one; an error, and nothing logged, when there is none or
        (with ``stored``) when its weights are gone (the online trainer keeps only the last versions that served)."""
        with self.locked():
            stack = self.history()
            if len(stack) < 2:
                raise UserInputError(
                    f"model {self.name!r}: nothing to roll back to ({len(stack)} version(s) served); "
                    f"promote a version with `pivotal models promote {self.name} VERSION`"
                )
            if stored is not None and not stored(stack[-2]):
                raise UserInputError(
                    f"model {self.name!r}: version {stack[-2]}, which served before {stack[-1]}, is no longer stored "
                    f"(the online trainer keeps the last versions that served); promote a stored one with "
                    f"`pivotal models promote {self.name} VERSION` (`pivotal models show {self.name}` lists them)"
                )
            return self.append(PromotionEvent(self.name, "rollback", stack[-2], stack[-1], _now(now_ms), reason, None, "manual"))


def _now(now_ms: int | None) -> int:
    return int(now_ms) if now_ms is not None else time.time_ns() // 1_000_000


def _json_default(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value)
    return str(value)
