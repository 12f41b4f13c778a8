"""Use cases of continuous learning out of the serving process: run the trainer, promote / roll back versions, load
and hot-swap the serving version, report staleness per (model, symbol) and feed it to the risk engine.

Plain functions over the checkpoint root (``<data_dir>/models``); the CLI (``pivotal models train-live | promote |
rollback | show``) and later the API are thin over them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivotal.config import Settings
from pivotal.models.output_store import InferenceHistory
from pivotal.models.serving import ServingModel
from pivotal.risk.engine import RiskEngine
from pivotal.training.checkpoints import CheckpointInfo, CheckpointManager
from pivotal.training.online import OnlineConfig, OnlineTrainer, read_metrics, trained_through_of
from pivotal.training.promotion import PromotionEvent, PromotionLog
from pivotal.training.queue import open_queue


def models_root(settings: Settings) -> Path:
    return settings.data_dir / "models"


def _manager(root: Path) -> CheckpointManager:
    from pivotal.training.online import UNBOUNDED_KEEP

    return CheckpointManager(root, keep=UNBOUNDED_KEEP)


def train_live(
    root: Path, name: str, queue_url: str, config: OnlineConfig = OnlineConfig(), max_steps: int | None = None,
    idle_exit_s: float | None = None, reclaim_ms: int = 30_000, nice: int = 0,
) -> OnlineTrainer:  # fmt: skip
    """Run the online trainer of ``name`` in this process until ``max_steps`` versions, ``idle_exit_s`` idle, or a
    stop signal; returns the trainer (its ``head`` is the newest version). ``nice`` > 0 lowers this process's CPU
    priority (a trainer beside a serving process on one machine: serving comes first)."""
    import os
    import signal

    if nice > 0:
        os.nice(nice)

    queue = open_queue(queue_url, reclaim_ms=reclaim_ms)
    trainer = OnlineTrainer(root, name, queue, config)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, trainer.stop)
    try:
        trainer.start()
        trainer.run(max_steps, idle_exit_s)
    finally:
        queue.close()
    return trainer


def serving_info(root: Path, name: str) -> CheckpointInfo:
    """The checkpoint that serves ``name``: the promotion log's version, else (never promoted) its best checkpoint."""
    manager = _manager(root)
    version = PromotionLog(root, name).serving()
    return manager.resolve(f"{name}/{version}" if version else name)


def promote(root: Path, name: str, version: str, reason: str = "manual promotion") -> PromotionEvent:
    """Serve ``name/version`` now (manual: no gate); logged. ``KeyError`` naming what exists when it is absent."""
    _manager(root).resolve(f"{name}/{version}")
    return PromotionLog(root, name).promote(version, reason)


def rollback(root: Path, name: str, reason: str = "manual rollback") -> PromotionEvent:
    """Serve the version that served before the current one; logged. ``UserInputError`` when there is none."""
    manager = _manager(root)

    def stored(version: str) -> bool:
        return any(info.id == version for info in manager.list(name))

    return PromotionLog(root, name).rollback(reason, stored=stored)


@dataclass(frozen=True)
class Staleness:
    """Per symbol: the newest label time the serving version was trained on, and ``now - that``."""

    name: str
    version: str
    trained_through: dict[str, int]
    staleness_ms: dict[str, int]


def staleness(root: Path, name: str, now_ms: int | None = None) -> Staleness:
    info = serving_info(root, name)
    now = int(now_ms) if now_ms is not None else time.time_ns() // 1_000_000
    through = trained_through_of(info)
    return Staleness(name, info.id, through, {s: now - t for s, t in sorted(through.items())})


def feed_risk(engine: RiskEngine, report: Staleness) -> None:
    """Give the risk engine's stale-model breaker the serving version's training time per (model, symbol): its
    ``on_model_status`` key is ``NAME:SYMBOL`` and its age is ``now - trained_through``."""
    for symbol, through in report.trained_through.items():
        engine.on_model_status(f"{report.name}:{symbol}", through)


def online_status(root: Path, name: str, now_ms: int | None = None, last_events: int = 5) -> dict[str, Any] | None:
    """What ``pivotal models show`` adds for a model trained online or promoted: serving version, staleness per
    symbol, the last promotion events, the last metrics line; None for a model never promoted."""
    log = PromotionLog(root, name)
    events = log.events()
    if not events:
        return None
    report = staleness(root, name, now_ms)
    metrics = read_metrics(root, name, last=1)
    return {
        "serving": report.version,
        "trained_through": report.trained_through,
        "staleness_ms": report.staleness_ms,
        "promotions": sum(e.action == "promote" for e in events),
        "refusals": sum(e.action == "refuse" for e in events),
        "rollbacks": sum(e.action == "rollback" for e in events),
        "last_events": [e.__dict__ for e in events[-last_events:]],
        "last_metrics": metrics[-1] if metrics else None,
    }


def serving_model(root: Path, name: str, history: InferenceHistory | None = None) -> ServingModel:
    """A ``ServingModel`` holding ``name``'s serving version."""
    info = serving_info(root, name)
    return ServingModel(_manager(root).load(info), info.id, history=history)


class ServingWatcher:
    """Hot swap in the serving process: polls the promotion log and, when another version serves, loads it (off the
    prediction path) and swaps it in. ``check`` does one poll; ``start`` polls every ``poll_s`` in a daemon thread."""

    def __init__(self, root: Path, name: str, serving: ServingModel, poll_s: float = 0.5) -> None:
        self.root, self.name, self.serving, self.poll_s = Path(root), name, serving, poll_s
        self.log = PromotionLog(root, name)
        self.manager = _manager(root)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> str | None:
        """The version swapped in, or None when the serving one is current."""
        version = self.log.serving()
        if version is None or version == self.serving.version:
            return None
        model = self.manager.load(self.manager.resolve(f"{self.name}/{version}"))
        self.serving.swap(model, version)
        return version

    def start(self) -> ServingWatcher:
        def loop() -> None:
            while not self._stop.wait(self.poll_s):
                try:
                    self.check()
                except Exception as exc:  # a bad checkpoint must not stop serving: keep the old version, report it
                    self.errors.append(f"{type(exc).__name__}: {exc}")

        self._thread = threading.Thread(target=loop, name=f"serving-watcher-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
