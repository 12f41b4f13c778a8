"""The online trainer: a process of its own that consumes training samples from a durable queue, fine-tunes the
model from its serving checkpoint and publishes versioned checkpoints; serving never waits for it.

Run it with ``pivotal models train-live NAME --queue URL`` or ``python -m pivotal.training.online --root DIR --name
NAME --queue URL``. One step:

1. ``take`` up to ``batch_size`` samples (pending ones of a dead trainer first); skip and ack those whose key is
   already *done* (trained into a published checkpoint) or repeated in the batch;
2. **gate** (``training.promotion``): when the newest version (the *head*) is not the serving one, evaluate both on
   this batch *before* training on it — out of sample for both — and log promote / refuse;
3. ``steps_per_batch`` gradient steps of the head on the batch (CPU by default) — with ``replay`` > 0, on the batch
   plus ``replay_ratio`` times as many samples drawn from a reservoir of the samples trained before (experience
   replay: consecutive live samples come from one market regime, and fine-tuning on them alone makes the model forget
   the others; measured in ``docs/reports/frozen-vs-live.md``), at learning rate ``lr`` (None: the model's own);
4. **publish** the head as a new checkpoint of ``NAME`` (``CheckpointIndex``), its ``extra`` holding ``online: true``,
   the parent version, the batch's sample keys and ``trained_through`` (newest label ``known_at`` of its lineage,
   overall and per symbol: what staleness is measured from);
5. ``mark_done`` the keys, then ``ack`` the entries; write the metrics line (JSONL feed) and TensorBoard scalars.

Crash safety (kill -9 at any point): before 4 nothing is recorded and the samples are redelivered and trained into
the surviving lineage; between 4 and 5 the restart marks the head's keys done (``start``), so redeliveries are
skipped; after 5 nothing is redelivered. Each sample is therefore trained exactly once into the published lineage.

The lineage starts from the serving version (``promotion.PromotionLog``; or the best checkpoint, which is then logged
as the first serving version) and continues from its own newest version across restarts. Old online versions beyond
``keep`` are deleted, and so are versions that served before the last ``keep_served`` (rollback reaches back that
far; keeping every one that ever served made the checkpoint index, rewritten on every publish, grow without bound).
The same trainer runs as a Ray actor (``training.online_ray``) when a cluster address is given; with the Redis
Streams queue it can run on any machine that reaches Redis and the checkpoint folder.

CPU: the process lowers its priority (``--nice``), uses ``--threads`` torch threads (default 1: on a busy machine more
threads slow serving more than they speed training) and may be pinned to ``--cpus`` (``os.sched_setaffinity``) so that
serving keeps the other cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from pivotal.models.heads import PRICE_SCALE, HeadOutputs
from pivotal.models.protocol import Batch
from pivotal.models.supervised import SupervisedModel
from pivotal.training.checkpoints import CheckpointInfo, CheckpointManager
from pivotal.training.promotion import ONLINE_DIR, GateConfig, GateResult, PromotionLog, gate
from pivotal.training.queue import Delivery, QueuedSample, SampleQueue, open_queue, to_batch
from pivotal.training.trainer import _writer

METRICS_FILE = "metrics.jsonl"
UNBOUNDED_KEEP = 1_000_000  # the manager must not rotate by metric: pruning here keeps what served


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class OnlineConfig:
    batch_size: int = 64
    steps_per_batch: int = 2
    block_ms: int = 1_000
    keep: int = 10  # online versions kept (plus the serving one and the last ``keep_served`` that served)
    gate: GateConfig = field(default_factory=GateConfig)
    consumer: str = ""  # default: host-pid
    log_dir: Path | None = None  # TensorBoard
    device: str = "cpu"
    replay: int = 0  # reservoir size of past samples mixed into each training batch (0: off)
    replay_ratio: float = 1.0  # replayed samples per fresh sample
    lr: float | None = None  # fine-tuning learning rate (None: the checkpoint's own)
    seed: int = 0  # the reservoir's draws
    keep_served: int = 20  # versions that served kept for rollback, newest first

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.steps_per_batch < 1 or self.keep < 1 or self.keep_served < 1 or self.block_ms < 0:
            raise ValueError("online trainer: batch_size, steps_per_batch, keep, keep_served must be >= 1 and block_ms >= 0")
        if self.replay < 0 or self.replay_ratio < 0 or (self.lr is not None and not self.lr > 0):
            raise ValueError("online trainer: replay and replay_ratio must be >= 0 and lr > 0")


class Reservoir:
    """A uniform sample of every sample offered so far (Vitter's algorithm R), at most ``size`` kept: what experience
    replay draws from. In memory: a restarted trainer starts with an empty one."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.items: list[QueuedSample] = []
        self.seen = 0
        self.rng = np.random.default_rng(seed)

    def add(self, samples: Sequence[QueuedSample]) -> None:
        for sample in samples:
            self.seen += 1
            if len(self.items) < self.size:
                self.items.append(sample)
            else:
                j = int(self.rng.integers(self.seen))
                if j < self.size:
                    self.items[j] = sample

    def draw(self, n: int) -> list[QueuedSample]:
        if n <= 0 or not self.items:
            return []
        picks = self.rng.choice(len(self.items), size=min(n, len(self.items)), replace=False)
        return [self.items[int(i)] for i in picks]


@dataclass(frozen=True)
class StepResult:
    version: str | None  # the published checkpoint (None: nothing new trained)
    trained: int
    skipped_done: int
    skipped_repeat: int
    redelivered: int
    loss_before: float
    loss_after: float
    train_s: float
    trained_through: int | None
    gate: GateResult | None
    promoted: bool
    replayed: int = 0  # reservoir samples trained beside the fresh ones


def is_online(info: CheckpointInfo) -> bool:
    return bool(info.extra.get("online"))


def trained_through_of(info: CheckpointInfo) -> dict[str, int]:
    """Newest label time (epoch ms) a checkpoint was trained on, per symbol: an online version's record, or an
    offline checkpoint's data span end for its symbol."""
    recorded = info.extra.get("trained_through_by_symbol")
    if isinstance(recorded, dict):
        return {str(k): int(v) for k, v in recorded.items()}
    span = info.data_span
    if span.get("symbol") and isinstance(span.get("end"), int):
        return {str(span["symbol"]): int(span["end"])}
    return {}


def per_sample_losses(model: SupervisedModel, batch: Batch) -> np.ndarray:
    """The multi-task loss of each sample alone (``models.heads.multitask_loss`` of that one row), for the whole batch
    in one forward pass and vectorised reductions: the gate runs it twice per step, and a loop over rows cost as much
    as the training itself."""
    model.net.eval()
    with torch.inference_mode():
        batch = {k: v.to(model.device) for k, v in batch.items()}
        out = model.net(batch["windows"], batch["context"])
        return row_losses(out, batch).double().cpu().numpy()


def _row_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per row of [B, k]: the masked mean (0 where the row has no target), as ``multitask_loss`` reduces one row."""
    count = mask.sum(dim=1)
    total = (values * mask).sum(dim=1)
    return torch.where(count > 0, total / count.clamp(min=1.0), torch.zeros_like(total))


def row_losses(out: HeadOutputs, batch: Batch) -> torch.Tensor:
    """[B] losses: row i equals ``multitask_loss`` of row i alone (same terms, masks and weights)."""
    kind = batch["kind"]
    kind_mask = (kind >= 0).float()
    kind_ce = F.cross_entropy(out.kind_logits.reshape(-1, 2), kind.clamp(min=0).reshape(-1), reduction="none")
    price = batch["price"]
    price_err = F.smooth_l1_loss(out.price, torch.nan_to_num(price) * PRICE_SCALE, reduction="none")
    bars = batch["bars"]
    bars_err = F.smooth_l1_loss(out.log_bars, torch.log1p(torch.nan_to_num(bars).clamp(min=0)), reduction="none")
    action = batch["action"]
    action_mask = (action >= 0).float()
    action_ce = F.cross_entropy(out.action_logits, action.clamp(min=0), reduction="none")
    correct = (out.action_logits.argmax(-1) == action).float()
    conf_bce = F.binary_cross_entropy_with_logits(out.confidence_logit, correct, reduction="none")
    return (
        _row_mean(kind_ce.view_as(kind_mask), kind_mask)
        + _row_mean(price_err, torch.isfinite(price).float())
        + _row_mean(bars_err, torch.isfinite(bars).float())
        + action_ce * action_mask
        + 0.5 * conf_bce * action_mask
    )


class OnlineTrainer:
    """See the module doc. ``now_ms`` is the wall clock of the trainer (time stamps of the log and metrics)."""

    def __init__(
        self,
        root: Path,
        name: str,
        queue: SampleQueue,
        config: OnlineConfig = OnlineConfig(),
        now_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        self.root = Path(root)
        self.name = name
        self.queue = queue
        self.config = config
        self.now_ms = now_ms
        self.consumer = config.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.manager = CheckpointManager(self.root, keep=UNBOUNDED_KEEP)
        self.log = PromotionLog(self.root, name)
        self.metrics_path = self.root / ONLINE_DIR / name / METRICS_FILE
        self.head: CheckpointInfo | None = None
        self.model: SupervisedModel | None = None
        self._champion: tuple[str, SupervisedModel] | None = None
        self._writer: Any = None
        self._step = 0
        self.stopping = False
        self.reservoir = Reservoir(config.replay, config.seed) if config.replay else None

    # --- start / recovery ----------------------------------------------------------------------------
    def start(self) -> CheckpointInfo:
        """Load the lineage head (or the serving version) and mark the head's samples done (crash recovery)."""
        infos = self.manager.list(self.name)
        if not infos:
            raise KeyError(f"no checkpoints for model {self.name!r} under {self.root}; train one with `pivotal train` first")
        online = sorted((i for i in infos if is_online(i)), key=lambda i: i.id)
        if online:
            head = online[-1]
            self.queue.mark_done(head.extra.get("sample_keys", []))
        else:
            serving = self.log.serving()
            head = self.manager.resolve(f"{self.name}/{serving}") if serving else infos[0]
            if serving is None:
                self.log.promote(head.id, reason="initial serving version: the checkpoint online training starts from")
        self.head, self.model = head, self._load(head)
        self._set_lr(self.model)
        self._writer = _writer(self.config.log_dir)
        return head

    def _load(self, info: CheckpointInfo) -> SupervisedModel:
        model = self.manager.load(info)
        if not isinstance(model, SupervisedModel):
            raise ValueError(
                f"{info.name}/{info.id}: online training supports CNN/Transformer checkpoints, not {info.model_type}"
            )
        if self.config.device != "cpu":
            from pivotal.models.supervised import pick_device

            model.to(pick_device(self.config.device))
        return model

    def _set_lr(self, model: SupervisedModel) -> None:
        if self.config.lr is not None:
            for group in model.optimizer.param_groups:
                group["lr"] = self.config.lr

    def _champion_model(self) -> tuple[str, SupervisedModel] | None:
        serving = self.log.serving()
        if serving is None:
            return None
        if self._champion is None or self._champion[0] != serving:
            self._champion = (serving, self._load(self.manager.resolve(f"{self.name}/{serving}")))
        return self._champion

    # --- one step ------------------------------------------------------------------------------------
    def step(self) -> StepResult | None:
        """Take, gate, train, publish, mark done, ack (module doc); None when the queue had nothing."""
        if self.model is None or self.head is None:
            self.start()
        assert self.model is not None and self.head is not None
        deliveries = self.queue.take(self.consumer, self.config.batch_size, self.config.block_ms)
        if not deliveries:
            return None
        fresh, skip_ids, skipped_done, repeats = self._fresh(deliveries)
        redelivered = sum(d.deliveries > 1 for d in deliveries)
        if not fresh:
            self.queue.ack(self.consumer, skip_ids)
            return StepResult(None, 0, skipped_done, repeats, redelivered, float("nan"), float("nan"), 0.0, None, None, False)
        samples = [d.sample for d in fresh]
        batch = to_batch(samples)
        verdict, promoted = self._gate(batch)
        before = self.model.eval_loss(batch)["loss"]
        replayed = self.reservoir.draw(round(self.config.replay_ratio * len(samples))) if self.reservoir else []
        train_batch = to_batch(samples + replayed) if replayed else batch
        started = time.perf_counter()
        for _ in range(self.config.steps_per_batch):
            self.model.train_step(train_batch)
        train_s = time.perf_counter() - started  # gradient steps only: the samples/s of the metrics feed
        if self.reservoir is not None:
            self.reservoir.add(samples)
        after = self.model.eval_loss(batch)["loss"]
        info = self._publish(samples, before, after)
        self.queue.mark_done([s.key for s in samples])
        self.queue.ack(self.consumer, [d.id for d in fresh] + skip_ids)
        result = StepResult(
            info.id, len(samples), skipped_done, repeats, redelivered, before, after, train_s,
            int(info.extra["trained_through"]), verdict, promoted, len(replayed),
        )  # fmt: skip
        self._report(result)
        self._prune()
        return result

    def _fresh(self, deliveries: Sequence[Delivery]) -> tuple[list[Delivery], list[str], int, int]:
        done = self.queue.done([d.sample.key for d in deliveries])
        fresh: list[Delivery] = []
        skip: list[str] = []
        seen: set[str] = set()
        skipped_done = repeats = 0
        for d in deliveries:
            if d.sample.key in done:
                skipped_done += 1
                skip.append(d.id)
            elif d.sample.key in seen:
                repeats += 1
                skip.append(d.id)
            else:
                seen.add(d.sample.key)
                fresh.append(d)
        return fresh, skip, skipped_done, repeats

    def _gate(self, batch: Batch) -> tuple[GateResult | None, bool]:
        assert self.model is not None and self.head is not None
        champion = self._champion_model()
        if champion is None or champion[0] == self.head.id:
            return None, False
        result = gate(per_sample_losses(champion[1], batch), per_sample_losses(self.model, batch), self.config.gate)
        event = self.log.decide(self.head.id, result, self.now_ms())
        return result, event.action == "promote"

    def _publish(self, samples: Sequence[QueuedSample], before: float, after: float) -> CheckpointInfo:
        assert self.model is not None and self.head is not None
        through = trained_through_of(self.head)
        for s in samples:
            through[s.symbol] = max(through.get(s.symbol, s.known_at), s.known_at)
        symbols = sorted({s.symbol for s in samples})
        extra = {
            "online": True,
            "parent": self.head.id,
            "samples": len(samples),
            "sample_keys": [s.key for s in samples],
            "trained_through": max(through.values()),
            "trained_through_by_symbol": through,
            "loss_before": before,
            "loss_after": after,
            "symbols": symbols,
        }
        span = {
            **self.head.data_span,
            "online_start": min(s.as_of for s in samples),
            "online_end": max(s.known_at for s in samples),
        }
        info = self.manager.save(self.model, "online_loss", after, False, span, extra=extra)
        self.head = info
        return info

    def _report(self, r: StepResult) -> None:
        self._step += 1
        line = {
            "at_ms": self.now_ms(),
            "step": self._step,
            "version": r.version,
            "serving": self.log.serving(),
            "trained": r.trained,
            "skipped_done": r.skipped_done,
            "skipped_repeat": r.skipped_repeat,
            "redelivered": r.redelivered,
            "loss_before": r.loss_before,
            "loss_after": r.loss_after,
            "train_s": r.train_s,
            "samples_per_s": r.trained * self.config.steps_per_batch / r.train_s if r.train_s > 0 else None,
            "replayed": r.replayed,
            "trained_through": r.trained_through,
            "gate": None if r.gate is None else dataclasses.asdict(r.gate),
            "promoted": r.promoted,
        }
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as handle:
            handle.write(json.dumps(line, default=float) + "\n")
        if self._writer is not None:
            for key in ("loss_before", "loss_after", "trained", "train_s"):
                self._writer.add_scalar(f"online/{key}", float(line[key]), self._step)  # type: ignore[arg-type]
            if r.gate is not None:
                self._writer.add_scalar("online/gate_p_value", r.gate.p_value, self._step)
                self._writer.add_scalar("online/promoted", float(r.promoted), self._step)
            self._writer.flush()

    def _prune(self) -> None:
        served = self.log.history()[-self.config.keep_served :]
        keep = set(served) | {self.log.serving() or "", self.head.id if self.head else ""}
        online = sorted((i for i in self.manager.list(self.name) if is_online(i)), key=lambda i: i.id)
        keep |= {i.id for i in online[-self.config.keep :]}
        for info in online:
            if info.id not in keep:
                self.manager.delete(f"{self.name}/{info.id}")

    # --- loop ----------------------------------------------------------------------------------------
    def run(self, max_steps: int | None = None, idle_exit_s: float | None = None) -> int:
        """Steps until ``max_steps`` published versions, ``idle_exit_s`` without samples, or SIGTERM/SIGINT (the
        current step finishes first). Returns the number of versions published."""
        published, idle_since = 0, time.monotonic()
        while not self.stopping and (max_steps is None or published < max_steps):
            result = self.step()
            if result is not None and result.version is not None:
                published += 1
                idle_since = time.monotonic()
            elif idle_exit_s is not None and time.monotonic() - idle_since >= idle_exit_s:
                break
        if self._writer is not None:
            self._writer.close()
        return published

    def stop(self, *_: Any) -> None:
        self.stopping = True


def _tail_lines(path: Path, n: int, block: int = 1 << 16) -> list[str]:
    """The last ``n`` lines of a file, reading backwards from its end: the feed grows by a line per version and the
    API and live statistics ask for its last line on every report."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        data, pos = b"", size
        while pos > 0 and data.count(b"\n") <= n:
            step = min(block, pos)
            pos -= step
            handle.seek(pos)
            data = handle.read(step) + data
    lines = data.decode(errors="replace").splitlines()
    if pos > 0:
        lines = lines[1:]  # the first line read may be cut
    return lines[-n:]


def read_metrics(root: Path, name: str, last: int | None = None) -> list[dict[str, Any]]:
    """The metrics feed of ``name`` (oldest first; the last ``last`` lines) for the API and ``pivotal models show``."""
    path = Path(root) / ONLINE_DIR / name / METRICS_FILE
    if not path.exists():
        return []
    lines = _tail_lines(path, last) if last else path.read_text().splitlines()
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue  # a torn last line of a killed trainer
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pivotal.training.online", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, type=Path, help="checkpoint root (<data_dir>/models)")
    parser.add_argument("--name", required=True, help="model name")
    parser.add_argument("--queue", required=True, help="sqlite:PATH or redis://HOST:PORT/DB?stream=NAME")
    parser.add_argument("--batch-size", type=int, default=OnlineConfig.batch_size)
    parser.add_argument("--steps", type=int, default=OnlineConfig.steps_per_batch, help="gradient steps per batch")
    parser.add_argument("--block-ms", type=int, default=OnlineConfig.block_ms)
    parser.add_argument("--reclaim-ms", type=int, default=30_000, help="redeliver entries pending this long")
    parser.add_argument("--alpha", type=float, default=GateConfig.alpha)
    parser.add_argument("--min-samples", type=int, default=GateConfig.min_samples)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--idle-exit-s", type=float, default=None)
    parser.add_argument("--keep", type=int, default=OnlineConfig.keep, help="online versions kept (plus the served ones)")
    parser.add_argument(
        "--keep-served", type=int, default=OnlineConfig.keep_served, help="versions that served kept for rollback"
    )
    parser.add_argument("--consumer", default="")
    parser.add_argument("--tensorboard", type=Path, default=None)
    parser.add_argument("--nice", type=int, default=10, help="lower CPU priority by this much: serving comes first")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--cpus", default="", help="pin the trainer to these CPU ids (comma-separated; default: any)")
    parser.add_argument("--replay", type=int, default=OnlineConfig.replay, help="experience-replay reservoir size (0: off)")
    parser.add_argument("--replay-ratio", type=float, default=OnlineConfig.replay_ratio, help="replayed per fresh sample")
    parser.add_argument("--lr", type=float, default=None, help="fine-tuning learning rate (default: the checkpoint's)")
    args = parser.parse_args(argv)
    if args.nice > 0:
        os.nice(args.nice)
    if args.cpus:
        cpus = {int(c) for c in args.cpus.split(",") if c.strip().isdigit()}
        count = os.cpu_count() or 1
        if not cpus or not cpus <= set(range(count)):
            parser.error(f"--cpus {args.cpus!r}: give CPU ids between 0 and {count - 1}, comma-separated")
        os.sched_setaffinity(0, cpus)
    torch.set_num_threads(max(1, args.threads))
    config = OnlineConfig(
        args.batch_size, args.steps, args.block_ms, args.keep, GateConfig(args.alpha, args.min_samples), args.consumer,
        log_dir=args.tensorboard, replay=args.replay, replay_ratio=args.replay_ratio, lr=args.lr,
        keep_served=args.keep_served,
    )  # fmt: skip
    queue = open_queue(args.queue, reclaim_ms=args.reclaim_ms)
    trainer = OnlineTrainer(args.root, args.name, queue, config)
    signal.signal(signal.SIGTERM, trainer.stop)
    try:
        trainer.start()
        published = trainer.run(args.max_steps, args.idle_exit_s)
    finally:
        queue.close()
    print(json.dumps({"published": published, "head": trainer.head.id if trainer.head else None}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
