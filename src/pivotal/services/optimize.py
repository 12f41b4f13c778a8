"""Use case: parameter search (``pivotal optimize``, later the HTTP API) — build a spec from options, start or resume
an optimization job, run it, and rank what it found.

Plain functions over settings; they return values and raise ``UserInputError`` (or another ``PivotalError``) with
one-line messages. Printing, progress bars included, is the caller's business: it passes a ``ProgressSink`` or None.
Starting and running are separate so that an API can hand back the job id at once and run it in the background;
running a job id again resumes it (its studies continue from their stored trials).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pivotal.config import Settings
from pivotal.core.errors import PivotalError, UserInputError
from pivotal.core.timeframes import parse_timeframes
from pivotal.data.backends import open_store
from pivotal.optimize.configs import TrainedConfiguration
from pivotal.optimize.jobs import JobRepository, OptimizationJob
from pivotal.optimize.parallel import make_runner
from pivotal.optimize.pipeline import Market, MarketReport, OptimizeSpec
from pivotal.optimize.service import OptimizationJobs, markets_of
from pivotal.optimize.study import ProgressSink
from pivotal.validation.walkforward import parse_duration

LeaderboardRow = tuple[Market, TrainedConfiguration | None]


def build_spec(
    *,
    strategy: str = "liquidity_sweep",
    exchange: str = "binance",
    symbols: Sequence[str] = ("BTC/USDT",),
    timeframes: Sequence[str] = ("1h",),
    method: str = "random",
    samples: int = 1000,
    sampler: str = "tpe",
    walk_forward: str | None = "90/7/30",
    anchored: bool = False,
    purge: str | None = None,
    embargo: str = "0",
    min_trades: int = 30,
    metric: str = "NET_PROFIT",
    seed: int = 0,
    input_file: Path | None = None,
    start: int | None = None,
    end: int | None = None,
) -> OptimizeSpec:
    """A validated :class:`OptimizeSpec` from user options (durations as text such as ``60d``; ``walk_forward``
    ``None`` or ``"none"``: no out-of-sample). Every refusal is one ``UserInputError`` line."""
    from pivotal.optimize.bayesian import SAMPLERS

    wf = None if walk_forward is None or walk_forward.strip().lower() == "none" else walk_forward
    try:
        spec = OptimizeSpec(
            exchange=exchange,
            symbols=tuple(s.strip() for s in symbols if s.strip()),
            timeframes=tuple(parse_timeframes(",".join(timeframes))),
            strategy=strategy,
            method=method,
            samples=samples,
            sampler=sampler,
            walk_forward=wf,
            anchored=anchored,
            purge_ms=None if purge is None else parse_duration(purge, "--purge"),
            embargo_ms=parse_duration(embargo, "--embargo"),
            min_trades=min_trades,
            metric=metric.upper(),
            seed=seed,
            input=str(input_file.resolve()) if input_file else None,
            start=start,
            end=end,
        )
    except PivotalError:
        raise
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    if method == "bayesian" and sampler not in SAMPLERS:
        raise UserInputError(f"unknown sampler {sampler!r}; choose one of {', '.join(sorted(SAMPLERS))}")
    if not spec.symbols or not spec.timeframes:
        raise UserInputError("give at least one symbol (--symbols) and one timeframe (--timeframes)")
    if input_file and not input_file.is_file():
        raise UserInputError(f"--input {input_file}: no such file")
    if input_file and len(spec.symbols) * len(spec.timeframes) != 1:
        raise UserInputError("--input holds one series: give exactly one --symbols and one --timeframes to label it")
    return spec


def start_optimization(settings: Settings, spec: OptimizeSpec, job_id: str | None = None) -> OptimizationJob:
    """Check the spec (strategy, markets, purge) and only then create the job record; an existing ``job_id`` with the
    same spec is returned as it is (resume), a different spec is refused."""
    store = open_store(settings)
    try:
        jobs = OptimizationJobs(settings, store, runner=make_runner(1))
        try:
            return jobs.start(spec, job_id)
        except PivotalError:
            raise
        except (KeyError, ValueError) as exc:  # an unknown strategy, a job id taken by another spec
            raise UserInputError(str(exc.args[0] if isinstance(exc, KeyError) else exc)) from None
    finally:
        store.close()


@dataclass(frozen=True)
class OptimizationOutcome:
    """A finished (or resumed to its end) job: its record, the configurations it stored, one report per market run
    in this process (empty when the job had already completed), and the leaderboard (best out-of-sample first)."""

    job: OptimizationJob
    configurations: list[TrainedConfiguration]
    reports: list[MarketReport]
    leaderboard: list[LeaderboardRow]


def run_optimization(
    settings: Settings,
    job_id: str,
    *,
    workers: int = 1,
    ray: str | None = None,
    progress: ProgressSink | None = None,
) -> OptimizationOutcome:
    """Run (or resume) job ``job_id`` to its end on local workers or a Ray cluster (``ray``: its address).

    A failure is recorded on the job (FAILED, with the error) and re-raised; running the id again resumes.
    """
    store = open_store(settings, transient=True)  # hold the DuckDB file only while reading/writing (docs/data.md)
    runner = make_runner(workers, ray)
    try:
        jobs = OptimizationJobs(settings, store, runner, progress)
        try:
            spec = OptimizeSpec.from_dict(jobs.service.status(job_id).spec)
        except KeyError as exc:
            raise UserInputError(str(exc.args[0])) from None
        configs = jobs.service.run(job_id)
        job = jobs.service.status(job_id)
    finally:
        runner.close()
        store.close()
    return OptimizationOutcome(job, configs, jobs.reports, leaderboard(job_id, spec, configs))


def leaderboard(job_id: str, spec: OptimizeSpec, configs: Sequence[TrainedConfiguration]) -> list[LeaderboardRow]:
    """One row per market of ``spec`` with its configuration (None: no configuration reached ``min_trades``), best
    out-of-sample net profit first, markets without a finite figure last (in spec order)."""
    by_id = {c.id: c for c in configs}
    rows = [(m, by_id.get(f"{job_id}:{m.label}")) for m in markets_of(spec)]

    def key(row: LeaderboardRow) -> float:
        value = row[1].oos_metrics.get("net_profit_pct") if row[1] else None
        return -value if isinstance(value, int | float) and math.isfinite(value) else math.inf

    return sorted(rows, key=key)


def optimization_status(settings: Settings, job_id: str) -> OptimizationJob:
    """One job's record (status, progress, times, error); ``UserInputError`` naming it when absent."""
    store = open_store(settings)
    try:
        job = JobRepository(store).get(job_id)
    finally:
        store.close()
    if job is None:
        raise UserInputError(f"no optimization job {job_id!r}; start one with `pivotal optimize`")
    return job


def list_optimizations(settings: Settings) -> list[OptimizationJob]:
    """Every optimization job, oldest first."""
    store = open_store(settings)
    try:
        return JobRepository(store).list()
    finally:
        store.close()
