"""The online trainer as a Ray actor: the scale-out path of ``training.online``.

When a cluster address is given (``ray://host:port``, ``auto`` for a running cluster, ``local`` for a fresh local
instance), the serving side starts ``RayTrainer`` instead of the ``python -m pivotal.training.online`` process. The
actor runs the same ``OnlineTrainer`` on the same durable queue and checkpoint root, so everything the serving side
relies on is unchanged: samples are taken, gated, trained and acked exactly as in the process (crash safety included:
a killed actor leaves its deliveries pending and the next trainer takes them), versions are published to the
checkpoint root and promotions to the promotion log, which ``services.online.ServingWatcher`` follows.

What the cluster must share with the serving node: the queue (Redis Streams for a trainer on another machine; the
embedded SQLite queue works for a local instance, same file) and the checkpoint root (a shared folder). The handle has
the process's interface (``running``, ``stop`` returning an exit code), so ``runtime.learning`` treats both alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pivotal.training.online import OnlineConfig, OnlineTrainer
from pivotal.training.queue import open_queue

__all__ = ["RayTrainer", "TrainerActor", "connect"]


class TrainerActor:
    """The actor's body (a plain class; ``RayTrainer`` wraps it with ``ray.remote``): one ``OnlineTrainer`` over
    ``queue_url``. ``run`` blocks until ``stop``, ``max_steps`` or ``idle_exit_s``; the actor has two threads so that
    ``stop`` reaches a running ``run`` (the step in progress finishes, as on SIGTERM in the process)."""

    def __init__(self, root: str, name: str, queue_url: str, config: OnlineConfig, reclaim_ms: int, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.queue = open_queue(queue_url, reclaim_ms=reclaim_ms)
        self.trainer = OnlineTrainer(Path(root), name, self.queue, config)

    def run(self, max_steps: int | None, idle_exit_s: float | None) -> dict[str, Any]:
        try:
            self.trainer.start()
            published = self.trainer.run(max_steps, idle_exit_s)
        finally:
            self.queue.close()
        return {"published": published, "head": self.trainer.head.id if self.trainer.head else None}

    def stop(self) -> None:
        self.trainer.stop()


def connect(address: str, num_cpus: int | None = None) -> Any:
    """``ray`` initialised for ``address`` ('local': a fresh local instance of ``num_cpus``; 'auto' or 'ray://…': an
    existing cluster); an already initialised Ray is used as it is."""
    try:
        import ray
    except ImportError:  # pragma: no cover - depends on the optional extra
        raise RuntimeError("a Ray trainer needs the optional extra: pip install 'pivotal[cluster]'") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return ray


class RayTrainer:
    """A started trainer actor of model ``name`` (see the module doc). ``result`` is the actor's summary
    (``published``, ``head``) once it has ended."""

    def __init__(
        self,
        address: str,
        root: Path,
        name: str,
        queue_url: str,
        config: OnlineConfig = OnlineConfig(),
        *,
        reclaim_ms: int = 30_000,
        threads: int = 1,
        max_steps: int | None = None,
        idle_exit_s: float | None = None,
        num_cpus: int | None = None,
    ) -> None:
        self._ray = ray = connect(address, num_cpus)
        actor_class = ray.remote(max_concurrency=2, num_cpus=1)(TrainerActor)
        root = Path(root).resolve()  # a Ray worker does not run in this process's working directory
        if queue_url.startswith("sqlite:"):
            queue_url = f"sqlite:{Path(queue_url.removeprefix('sqlite:')).resolve()}"
        self.actor = actor_class.remote(str(root), name, queue_url, config, reclaim_ms, threads)
        self._run = self.actor.run.remote(max_steps, idle_exit_s)
        self.result: dict[str, Any] | None = None

    def running(self) -> bool:
        ready, _ = self._ray.wait([self._run], timeout=0)
        return not ready

    def wait(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The actor's summary when ``run`` ends (raises ``ray.exceptions.GetTimeoutError`` after ``timeout_s``)."""
        self.result = self._ray.get(self._run, timeout=timeout_s)
        return self.result

    def stop(self, timeout_s: float = 30.0) -> int:
        """Ask the actor to stop after its current step and wait; 0 when it ended cleanly, 1 when it failed, -9 when
        it had to be killed (its deliveries stay pending and are redelivered to the next trainer)."""
        ray = self._ray
        code = 0
        try:
            if self.running():
                self.actor.stop.remote()
            self.wait(timeout_s)
        except ray.exceptions.GetTimeoutError:
            code = -9
        except ray.exceptions.RayError:
            code = 1
        ray.kill(self.actor)
        return code
