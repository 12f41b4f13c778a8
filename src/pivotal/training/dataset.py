"""Training samples from real candles: the encoded input as of bar t plus the labels that become known later.

A sample at base bar t (base = the spec's first window) is encoded from ``build_input_from_series`` at the close
time of bar t, so it sees only candles closed by then and pivots confirmed by then. A sample is kept only if that input
passes the same completeness rule as ``pivotal predict`` (``features.completeness.check_completeness`` with the spec's
threshold and ``min_bars``): a model is never trained on an input it would refuse to predict on (e.g. a stale 1d window).
Its targets come from ``training.labels.LabelSet`` and carry ``known_at`` (the bar at whose close each target
exists); the trainer masks every target not yet known at its own clock (``SampleSet.known_by``) — that is how purging
is done exactly.

A sample also carries ``next_open``, the open of bar t+1: the price at which a decision made at t's close fills
(``pivotal.execution``: next-open fills). It exists only to settle that fill when a policy is evaluated or trained
against the execution model (``SampleSet.execution_open``); it is never part of the model input (``SampleSet.batch``
serves windows, context and targets only).

Encoded windows are cached as float16 (halves memory; the encoding is bounded to [-10, 10]).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

import numpy as np
import torch
from torch.utils.data import Dataset

from pivotal.data.candles import Candles
from pivotal.features.assemble import PreparedSeries, build_input_from_series, prepare_series
from pivotal.features.cob import CobFeatures
from pivotal.features.completeness import check_completeness
from pivotal.features.encoding import context_size, encode, order_book_size, windows_shape
from pivotal.features.input_spec import InputSpec
from pivotal.models.io import WindowKey
from pivotal.models.protocol import Batch, InputShape
from pivotal.training.labels import LabelSet, build_labels


def input_shape(spec: InputSpec, levels: int) -> InputShape:
    """The model ``InputShape`` matching an encoding spec."""
    n_windows, window_len, n_channels = windows_shape(spec)
    return InputShape(n_windows, window_len, n_channels, context_size(spec), levels, order_book=order_book_size(spec))


def prepare(candles: Mapping[WindowKey, Candles], spec: InputSpec) -> dict[WindowKey, PreparedSeries]:
    """Pivots and indicators once per whole series (``features.assemble.prepare_series``, as live inference does)."""
    return prepare_series(candles, spec.pivot_params)


@dataclass(frozen=True)
class SampleSet:
    """N samples in time order. Targets: see ``models.protocol`` (kind 0 = H, 1 = L, -1 unknown)."""

    index: np.ndarray  # int64 [N]   base bar t
    time: np.ndarray  # int64 [N]   as-of time (close of bar t), epoch ms
    close: np.ndarray  # float64 [N] close of bar t
    next_open: np.ndarray  # float64 [N] open of bar t+1 (fill price of a decision at t; NaN at the series' last bar)
    windows: np.ndarray  # float16 [N, W, T, C]
    context: np.ndarray  # float32 [N, K]
    kind: np.ndarray  # int64 [N, levels]
    price: np.ndarray  # float32 [N, levels]  ln(pivot price / close[t])
    bars: np.ndarray  # float32 [N, levels]
    action: np.ndarray  # int64 [N]
    known_at: np.ndarray  # int64 [N, levels]  bar index at which each target is known (-1 never)
    action_known_at: np.ndarray  # int64 [N]
    last_kind: np.ndarray  # int64 [N, levels]  kind of the last pivot confirmed by t (0 H, 1 L, -1 none)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def levels(self) -> int:
        return self.kind.shape[1]

    def take(self, rows: np.ndarray | slice) -> SampleSet:
        return SampleSet(**{f.name: getattr(self, f.name)[rows] for f in fields(self)})

    def known_by(self, now: int) -> SampleSet:
        """Targets not yet known at bar ``now`` become unknown (no label from the future trains the model)."""
        level_ok = (self.known_at >= 0) & (self.known_at <= now)
        action_ok = (self.action_known_at >= 0) & (self.action_known_at <= now)
        return replace(
            self,
            kind=np.where(level_ok, self.kind, -1),
            price=np.where(level_ok, self.price, np.nan).astype(np.float32),
            bars=np.where(level_ok, self.bars, np.nan).astype(np.float32),
            action=np.where(action_ok, self.action, -1),
        )

    def execution_open(self) -> np.ndarray:
        """Opens aligned with ``close`` for the execution model stepping through these samples as bars: bar k opens at
        ``next_open[k-1]``, where the decision at sample k-1 fills (with gaps between samples, bar k spans the bars from
        index[k-1] + 1 to index[k]). Bar 0's open settles no fill (nothing is pending before the first decision) and is
        its close. Raises when a fill price is missing (a sample at the series' last bar that is not the last here)."""
        fills = self.next_open[:-1]
        if not np.all(np.isfinite(fills)):
            bad = int(self.index[np.flatnonzero(~np.isfinite(fills))[0]])
            raise ValueError(f"sample at bar {bad} has no next open to fill at; only the last sample may lack one")
        return np.r_[self.close[:1], fills].astype(np.float64)

    def batch(self, rows: np.ndarray) -> Batch:
        return {
            "windows": torch.from_numpy(self.windows[rows].astype(np.float32)),
            "context": torch.from_numpy(self.context[rows]),
            "kind": torch.from_numpy(self.kind[rows]),
            "price": torch.from_numpy(self.price[rows]),
            "bars": torch.from_numpy(self.bars[rows]),
            "action": torch.from_numpy(self.action[rows]),
        }


def _last_pivot_kind(prepared: PreparedSeries, t: np.ndarray, levels: int) -> np.ndarray:
    """Per sample and level: the kind of the most recently *confirmed* pivot at bar t (persistence baseline)."""
    out = np.full((len(t), levels), -1, np.int64)
    for level in range(1, levels + 1):
        highs, lows = prepared.pivots.get(level, "H"), prepared.pivots.get(level, "L")
        h_n = np.searchsorted(highs.confirmed_at, t, side="right")
        l_n = np.searchsorted(lows.confirmed_at, t, side="right")
        h_idx = np.where(h_n > 0, highs.index[np.maximum(h_n - 1, 0)] if len(highs) else -1, -1)
        l_idx = np.where(l_n > 0, lows.index[np.maximum(l_n - 1, 0)] if len(lows) else -1, -1)
        out[:, level - 1] = np.where((h_idx < 0) & (l_idx < 0), -1, np.where(h_idx >= l_idx, 0, 1))
    return out


def next_open_of(open_: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``open_[t + 1]`` for every t in ``index`` (NaN where bar t is the last): the fill price of a decision at t."""
    nxt = index + 1
    has = nxt < len(open_)
    return np.where(has, np.asarray(open_, np.float64)[np.minimum(nxt, len(open_) - 1)], np.nan)


def build_samples(
    series: Mapping[WindowKey, PreparedSeries],
    symbol: str,
    spec: InputSpec,
    levels: int = 3,
    stride: int = 1,
    labels: LabelSet | None = None,
    start: int | None = None,
    end: int | None = None,
    order_book: CobFeatures | None = None,
) -> SampleSet:
    """Encode a sample every ``stride`` base bars whose input is complete (module doc), with as-of time in
    ``[start, end)`` when given (features still use all history before ``start``). ``order_book``: the symbol's
    ``features.cob`` rows, for a spec that reads the order book (each sample takes the newest row known by its t)."""
    keys = spec.keys(symbol)
    missing = [k for k in keys if k not in series]
    if missing:
        raise ValueError(f"no candles for window(s) {missing}; load them first (have {sorted(series)})")
    base = series[keys[0]]
    if labels is None:
        labels = build_labels(base.candles, spec.pivot_params, pivots=base.pivots)
    if labels.levels < levels:
        raise ValueError(f"labels have {labels.levels} levels, {levels} requested; raise PivotParams.levels")
    ready = np.ones(len(base.candles), bool)
    for key in keys:
        ready &= np.searchsorted(series[key].close_ts, base.close_ts, side="right") >= spec.min_bars
    if start is not None:
        ready &= base.close_ts >= start
    if end is not None:
        ready &= base.close_ts < end
    index = np.flatnonzero(ready)[::stride].astype(np.int64)
    if len(index) == 0:
        raise ValueError(f"no bar of {keys[0]} has {spec.min_bars} closed bars in every window {keys}; load more history")
    windows = np.zeros((len(index), *windows_shape(spec)), np.float16)
    context = np.zeros((len(index), context_size(spec)), np.float32)
    complete = np.zeros(len(index), bool)
    for row, t in enumerate(base.close_ts[index].tolist()):
        inp = build_input_from_series(series, symbol, t, spec, order_book=order_book)
        if not check_completeness(inp, spec).ready:
            continue  # predict would refuse this input: do not train on it
        complete[row] = True
        encoded = encode(inp, spec)
        windows[row], context[row] = encoded.windows, encoded.context
    if not complete.any():
        raise ValueError(
            f"no input of {symbol} {keys} reaches completeness {spec.completeness_threshold} with {spec.min_bars} bars "
            "per window; import the missing bars"
        )
    index, windows, context = index[complete], windows[complete], context[complete]
    times = base.close_ts[index]
    kind = np.where(labels.kind[index, :levels] > 0, 0, np.where(labels.kind[index, :levels] < 0, 1, -1)).astype(np.int64)
    return SampleSet(
        index=index,
        time=times.astype(np.int64),
        close=base.candles.close[index].astype(np.float64),
        next_open=next_open_of(base.candles.open, index),
        windows=windows,
        context=context,
        kind=kind,
        price=labels.offset[index, :levels].astype(np.float32),
        bars=np.where(labels.bars_until[index, :levels] >= 0, labels.bars_until[index, :levels], np.nan).astype(np.float32),
        action=labels.action[index].astype(np.int64),
        known_at=labels.known_at[index, :levels].astype(np.int64),
        action_known_at=labels.action_known_at[index].astype(np.int64),
        last_kind=_last_pivot_kind(base, index, levels),
    )


class SampleDataset(Dataset):
    """A torch ``Dataset`` over a ``SampleSet``; ``__getitems__`` serves whole batches without per-item collation."""

    def __init__(self, samples: SampleSet) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Batch:
        return {k: v[0] for k, v in self.samples.batch(np.array([i])).items()}

    def __getitems__(self, rows: list[int]) -> Batch:
        return self.samples.batch(np.asarray(rows, np.int64))
