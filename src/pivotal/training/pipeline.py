"""One training run end to end: candles → samples → walk-forward folds → train per fold → evaluate → report → checkpoint.

Every fold trains a fresh model on its train window only, with every label not yet known at the end of that window
masked out (exact purging via ``known_at``), chooses its epoch on the chronological tail of the train window, and
is evaluated on its test window against the baselines. The last fold is the *holdout*: evaluated and reported, never
used to choose anything. The checkpoint saved is the last fold's model (trained on the most recent train window),
ranked by its validation metric.

Inputs are built exactly as ``pivotal predict`` builds them (``features.assemble``: whole series → pivot table and
indicators → cut at t), and a sample is kept only when predict would accept its input (the completeness rule), so the
model never trains on a window predict refuses, and the pivot context at t is the same table in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pivotal.core.stats import periods_per_year
from pivotal.core.timeframes import timeframe_ms
from pivotal.data.candles import Candles
from pivotal.data.loaders import load_candles
from pivotal.data.store import MarketStore
from pivotal.features.assemble import PreparedSeries, build_input_from_series, load_input_series, prepare_series
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.models.cnn import CNNModel
from pivotal.models.dqn import DQNAgent, state_dim_for
from pivotal.models.io import BaseDataInput
from pivotal.models.protocol import CNN_PRESETS, DQNConfig, with_shape
from pivotal.models.supervised import SupervisedModel, pick_device
from pivotal.models.transformer import TransformerModel, preset_config
from pivotal.structure.types import PivotParams
from pivotal.training.checkpoints import CheckpointManager
from pivotal.training.dataset import SampleSet, build_samples, input_shape, prepare
from pivotal.training.evaluation import Predictions, Row, evaluate_policy, evaluate_supervised
from pivotal.training.preregistration import PRIMARY, write_plan
from pivotal.training.report import FoldReport, write_report
from pivotal.training.rl_trainer import RLConfig, base_states, run_policy, train_dqn
from pivotal.training.trainer import TrainConfig, Trainer, split_train_val
from pivotal.validation.walkforward import DAY_MS, Fold, WalkForwardSpec, split


@dataclass(frozen=True)
class RunSpec:
    model_type: str  # cnn | transformer | dqn
    exchange: str
    symbol: str
    timeframes: tuple[str, ...]
    name: str = ""
    window: int = 100
    levels: int = 3
    stride: int = 1
    epochs: int = 5
    batch_size: int = 128
    device: str = "cpu"
    seed: int = 0
    preset: str = ""  # cnn: small|medium; transformer: 5m|8m|12m
    walk_forward: WalkForwardSpec = field(default_factory=lambda: WalkForwardSpec(365 * DAY_MS, 7 * DAY_MS, 180 * DAY_MS))
    max_folds: int = 3  # the most recent folds (the last is the holdout)
    episodes: int = 2
    fee: float = 0.001
    slippage: float = 0.0005
    n_boot: int = 2000  # the smallest bootstrap p is 2/(n_boot+1): 0.001 survives Holm over the ~30 cells of a report
    max_batches_per_epoch: int | None = None
    progress: bool = True
    threads: int = 1  # CPU threads for torch; more than 1 is much slower on a busy shared machine
    min_completeness: float = 0.8  # samples below it are dropped (predict's default threshold)
    start: int | None = None  # sample as-of times in [start, end) (epoch ms); features still see all earlier history
    end: int | None = None

    @property
    def model_name(self) -> str:
        return self.name or self.model_type

    def input_spec(self) -> InputSpec:
        return InputSpec(
            tuple(WindowSpec(tf, self.window) for tf in self.timeframes),
            completeness_threshold=self.min_completeness,
            pivot_params=PivotParams(levels=5),
            order_flow_windows_ms=(),
        )

    def extra(self) -> dict[str, Any]:
        """What ``pivotal predict`` needs to rebuild the input of this model."""
        return {"timeframes": list(self.timeframes), "window": self.window, "levels": self.levels, "exchange": self.exchange}


# ------------------------------------------------------------------------------------------- loading


def load_series(store: MarketStore | None, spec: RunSpec, base: Candles | None = None) -> dict[tuple[str, str], Candles]:
    """The whole series of every window (``features.assemble.load_input_series``, as predict loads them): the base
    timeframe from ``base`` (an ``--input`` file) or the store; a coarser timeframe the store does not cover, wholly or
    in part, is filled by aggregating the base (complete buckets only)."""
    tfs = spec.timeframes
    if base is None:
        if store is None:
            raise ValueError("no store and no --input file: nothing to train on")
        base = load_candles(store, spec.exchange, spec.symbol, tfs[0])
    if len(base) == 0:
        raise ValueError(f"no {tfs[0]} candles for {spec.exchange} {spec.symbol}; import them first (pivotal data import ...)")
    out = load_input_series(store, spec.exchange, spec.symbol, spec.input_spec(), {(spec.symbol, tfs[0]): base})
    for tf in tfs[1:]:
        if (spec.symbol, tf) not in out:
            raise ValueError(
                f"no {tf} candles for {spec.exchange} {spec.symbol}: none stored and {tf} is not a whole multiple of the "
                f"base {tfs[0]}; import {tf} or list the finest timeframe first"
            )
    return out


def prepare_live(store: MarketStore, spec: RunSpec) -> dict[tuple[str, str], PreparedSeries]:
    """The prepared series ``live_input`` cuts from; build once to answer many t."""
    return prepare_series(load_series(store, spec), spec.input_spec().pivot_params)


def live_input(
    store: MarketStore, spec: RunSpec, t: int, prepared: dict[tuple[str, str], PreparedSeries] | None = None
) -> BaseDataInput:
    """``BaseDataInput`` as of t from the store: the same load → prepare → cut as a training sample at t, so pivot
    context, indicators and aggregated windows are identical to what the model was trained on."""
    if prepared is None:
        prepared = prepare_live(store, spec)
    return build_input_from_series(prepared, spec.symbol, t, spec.input_spec())


def make_samples(candles: dict[tuple[str, str], Candles], spec: RunSpec) -> SampleSet:
    input_spec = spec.input_spec()
    series = prepare(candles, input_spec)
    return build_samples(series, spec.symbol, input_spec, spec.levels, spec.stride, start=spec.start, end=spec.end)


# -------------------------------------------------------------------------------------------- models


def new_supervised(spec: RunSpec) -> SupervisedModel:
    shape = input_shape(spec.input_spec(), spec.levels)
    name = spec.model_name if spec.model_type != "dqn" else f"{spec.model_name}-features"
    if spec.model_type == "transformer":
        model: SupervisedModel = TransformerModel(preset_config(spec.preset or "8m", shape), name=name, seed=spec.seed)
    else:
        preset = spec.preset if spec.model_type == "cnn" and spec.preset else "small"
        if preset not in CNN_PRESETS:
            raise ValueError(f"unknown CNN preset {preset!r}; use one of {sorted(CNN_PRESETS)}")
        model = CNNModel(with_shape(CNN_PRESETS[preset], shape), name=name, seed=spec.seed)
    return model.to(pick_device(spec.device))


def _fold_sets(samples: SampleSet, fold: Fold, val_fraction: float) -> tuple[SampleSet, SampleSet, SampleSet, int]:
    """(train, val, test, now): labels masked to what is known at the end of the train window."""
    window = samples.take(fold.train.indices())
    train, val = split_train_val(window, val_fraction)
    now = int(window.index[-1])
    return train.known_by(int(val.index[0]) - 1), val.known_by(now), samples.take(slice(fold.test.start, fold.test.end)), now


@torch.inference_mode()
def predict_sets(model: SupervisedModel, samples: SampleSet, batch_size: int = 256) -> Predictions:
    kinds, prices, bars, actions = [], [], [], []
    for start in range(0, len(samples), batch_size):
        batch = samples.batch(np.arange(start, min(start + batch_size, len(samples))))
        out = model.infer(batch["windows"], batch["context"])
        kinds.append(out["kind_prob"].argmax(-1).cpu().numpy())
        prices.append(out["price"].cpu().numpy())
        bars.append(out["bars"].cpu().numpy())
        actions.append(out["action_prob"].argmax(-1).cpu().numpy())
    return Predictions(np.concatenate(kinds), np.concatenate(prices), np.concatenate(bars), np.concatenate(actions))


def _train_supervised(spec: RunSpec, model: SupervisedModel, train: SampleSet, val: SampleSet, log_dir: Path | None) -> Trainer:
    config = TrainConfig(
        spec.epochs,
        spec.batch_size,
        spec.seed,
        log_dir=log_dir,
        progress=spec.progress,
        max_batches_per_epoch=spec.max_batches_per_epoch,
    )
    trainer = Trainer(model, config)
    trainer.fit(train, val)
    trainer.restore_best()
    return trainer


# ---------------------------------------------------------------------------------------------- runs


@dataclass
class RunResult:
    model: SupervisedModel | DQNAgent
    folds: list[FoldReport]
    pooled: list[Row]
    metric_name: str
    metric: float
    higher_is_better: bool
    data_span: dict[str, Any]
    report: Path | None = None
    primary: dict[str, Any] | None = None  # the pre-registered primary comparison (``evaluation.json``)


def run(
    spec: RunSpec, candles: dict[tuple[str, str], Candles], log_dir: Path | None = None, report_dir: Path | None = None
) -> RunResult:
    """Walk-forward training + evaluation of ``spec.model_type`` on ``candles`` (see module doc). With ``report_dir``,
    the evaluation plan and the data hash are written there (``evaluation.json``) before any fold is trained, hence
    before the holdout fold is scored."""
    if spec.model_type not in ("cnn", "transformer", "dqn"):
        raise ValueError(f"unknown model type {spec.model_type!r}; use cnn, transformer or dqn")
    torch.set_num_threads(max(1, spec.threads))
    samples = make_samples(candles, spec)
    folds = split(samples.time, spec.walk_forward)[-spec.max_folds :]
    primary = PRIMARY["dqn" if spec.model_type == "dqn" else "supervised"]
    if report_dir is not None:
        fold_spans = [
            {
                "number": f.number,
                "holdout": k == len(folds) - 1,
                "train": [int(samples.time[f.train.start]), int(samples.time[f.train.end - 1])],
                "test": [int(samples.time[f.test.start]), int(samples.time[f.test.end - 1])],
            }
            for k, f in enumerate(folds)
        ]
        write_plan(report_dir, spec, fold_spans, candles, primary, len(samples))
    reports: list[FoldReport] = []
    model: SupervisedModel | DQNAgent | None = None
    metric = float("nan")
    for k, fold in enumerate(folds):
        holdout = k == len(folds) - 1
        fold_log = log_dir / f"fold{fold.number}" if log_dir is not None else None
        train, val, test, _ = _fold_sets(samples, fold, 0.15)
        cnn = new_supervised(spec)
        trainer = _train_supervised(spec, cnn, train, val, fold_log)
        span = (int(train.time[0]), int(val.time[-1])), (int(test.time[0]), int(test.time[-1]))
        if spec.model_type == "dqn":
            model, rows, policy, metric = _dqn_fold(spec, cnn, train, val, test, fold_log)
            reports.append(FoldReport(fold.number, *span, len(train), len(test), trainer.history, rows, holdout, policy))
        else:
            model, metric = cnn, trainer.best_val
            rows = evaluate_supervised(predict_sets(cnn, test), test, train, spec.n_boot, seed=spec.seed)
            reports.append(FoldReport(fold.number, *span, len(train), len(test), trainer.history, rows, holdout))
    pooled: list[Row] = []  # folds are reported one by one: baselines are fitted per fold, so pooling would mix them
    data_span = {
        "exchange": spec.exchange,
        "symbol": spec.symbol,
        "timeframes": list(spec.timeframes),
        "start": int(samples.time[0]),
        "end": int(samples.time[-1]),
        "samples": len(samples),
    }
    assert model is not None
    is_dqn = spec.model_type == "dqn"
    metric_name = "val_net_log_return" if is_dqn else "val_loss"
    return RunResult(model, reports, pooled, metric_name, metric, is_dqn, data_span, primary=primary)


def _dqn_fold(
    spec: RunSpec, cnn: SupervisedModel, train: SampleSet, val: SampleSet, test: SampleSet, log_dir: Path | None
) -> tuple[DQNAgent, list[Row], dict[str, np.ndarray], float]:
    config = DQNConfig(state_dim=state_dim_for(cnn), fee=spec.fee, slippage=spec.slippage)
    agent = DQNAgent(config, cnn, name=spec.model_name, seed=spec.seed)
    rl = RLConfig(episodes=spec.episodes, seed=spec.seed, log_dir=log_dir, progress=spec.progress)
    train_dqn(agent, base_states(cnn, train), train.close, rl, train.execution_open())
    val_rows, _ = evaluate_samples_policy(spec, run_policy(agent, base_states(cnn, val)), val, n_boot=50)
    val_metric = next(r.estimate.value for r in val_rows if r.metric == "total_log_return" and r.estimator == "model")
    rows, series = evaluate_samples_policy(spec, run_policy(agent, base_states(cnn, test)), test, spec.n_boot)
    return agent, rows, series, val_metric


def evaluate_samples_policy(
    spec: RunSpec, actions: np.ndarray, samples: SampleSet, n_boot: int
) -> tuple[list[Row], dict[str, np.ndarray]]:
    """``evaluate_policy`` of one action per sample, executed like the engine: the decision at sample t's close fills
    at ``samples.next_open[t]`` (the open of bar t+1), marked at the next sample's close; Sharpe annualised with
    ``periods_per_year`` of one step (base timeframe × stride)."""
    periods = periods_per_year(timeframe_ms(spec.timeframes[0]) * spec.stride)
    return evaluate_policy(
        actions,
        samples.close,
        spec.fee,
        spec.slippage,
        n_boot=n_boot,
        seed=spec.seed,
        open_=samples.execution_open(),
        periods=periods,
    )


def finish(result: RunResult, spec: RunSpec, checkpoints: CheckpointManager, report_dir: Path | None) -> RunResult:
    """Save the checkpoint (rotating) and write the report."""
    checkpoints.save(result.model, result.metric_name, result.metric, result.higher_is_better, result.data_span, spec.extra())
    if report_dir is not None:
        meta = {
            "model": f"{spec.model_type} `{spec.model_name}` ({_param_count(result.model):,} parameters)",
            "data": f"{spec.exchange} {spec.symbol} {','.join(spec.timeframes)}, {result.data_span['samples']} samples",
            "walk-forward": f"train {spec.walk_forward.train_ms // DAY_MS} d, gap {spec.walk_forward.gap_ms // DAY_MS} d, "
            f"test {spec.walk_forward.test_ms // DAY_MS} d; last {len(result.folds)} folds",
            "costs": f"fee {spec.fee}, slippage {spec.slippage} per side; a decision at a sample's close fills at the next "
            "bar's open (execution model); Sharpe annualised (365-day year)"
            if spec.model_type == "dqn"
            else "n/a",
            "checkpoint metric": f"{result.metric_name} = {result.metric:.4f}",
        }
        meta["pre-registration"] = "`evaluation.json` (plan and data SHA-256, written before the holdout was scored)"
        title = f"Evaluation: {spec.model_name}"
        result.report = write_report(report_dir, title, meta, result.folds, result.pooled, result.primary)
    return result


def _param_count(model: SupervisedModel | DQNAgent) -> int:
    if isinstance(model, DQNAgent):
        return sum(p.numel() for p in model.online.parameters())
    return model.parameter_count()
