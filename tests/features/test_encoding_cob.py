"""The models read the order book: COB rows of a real capture → ``BaseDataInput.order_book`` → encoded context →
CNN / Transformer, causally (a prediction at t uses no COB row known after t), with the completeness rule.

Data: the recorded Binance BTC/USDT spot capture (2024-08-08 23:54 → 00:05, depth + trades); its 1 s and 1 m bars
are built from its trade prints (``data.resample.candles_from_trades``).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch

from pivotal.data.candles import Candles
from pivotal.data.resample import candles_from_trades
from pivotal.data.trades import Trades
from pivotal.features.assemble import PreparedSeries, build_input_from_series, prepare_series
from pivotal.features.cob import ORDER_BOOK_SIZE, CobConfig, CobFeatures, cob_features, order_book_vector
from pivotal.features.completeness import check_completeness
from pivotal.features.encoding import context_size, encode, order_book_part, order_book_size
from pivotal.features.input_spec import InputSpec, WindowSpec
from pivotal.features.model_io import ShapeError
from pivotal.models.cnn import CNNModel
from pivotal.models.protocol import CNNConfig, InputShape, TransformerConfig, config_from_dict, config_to_dict
from pivotal.models.transformer import TransformerModel
from pivotal.training.dataset import SampleSet, build_samples, input_shape
from tests.orderbook.captures import load_capture

SYMBOL = "BTC/USDT"
SPEC = InputSpec((WindowSpec("1s", 60), WindowSpec("1m", 3)), min_bars=3, order_book=ORDER_BOOK_SIZE)
LEVELS = 2


@cache
def _capture(root: Path) -> tuple[dict[tuple[str, str], PreparedSeries], CobFeatures, Trades]:
    cap = load_capture(root, "binance", "BTCUSDT")
    trades = replace(cap.trades, exchange="binance", symbol=SYMBOL)
    bars = {tf: candles_from_trades(trades, tf)[0] for tf in ("1s", "1m")}
    series = prepare_series({(SYMBOL, tf): c for tf, c in bars.items()}, SPEC.pivot_params)
    rows = cob_features(cap.snapshot, cap.messages, cap.trades, CobConfig.for_symbol(SYMBOL))
    return series, rows, cap.trades


@cache
def _samples(root: Path) -> SampleSet:
    series, rows, _ = _capture(root)
    samples = build_samples(series, SYMBOL, SPEC, levels=LEVELS, stride=2, order_book=rows)  # training's own path
    for k, t in enumerate(samples.time.tolist()[::25]):  # each sample is the live input encoded at its t
        live = encode(build_input_from_series(series, SYMBOL, t, SPEC, order_book=rows), SPEC).context
        assert np.array_equal(samples.context[k * 25], live)
    return samples


def _shape() -> InputShape:
    shape = input_shape(SPEC, LEVELS)
    assert shape == InputShape(len(SPEC.windows), SPEC.window_len, 11, context_size(SPEC), LEVELS, order_book_size(SPEC))
    return shape


def _cnn(seed: int = 0) -> CNNModel:
    return CNNModel(CNNConfig(_shape(), conv_channels=(8,), gru_hidden=16, trunk_hidden=32, dropout=0.0), seed=seed)


def test_spec_off_by_default_keeps_the_encoding_unchanged() -> None:
    off = InputSpec((WindowSpec("1s", 60), WindowSpec("1m", 3)), min_bars=3)
    assert off.order_book == 0 and order_book_size(off) == 0
    assert context_size(SPEC) == context_size(off) + ORDER_BOOK_SIZE + 1
    assert CobConfig(10.0).vector_size == ORDER_BOOK_SIZE == 207
    with pytest.raises(ValueError, match="order_book must be 0"):
        InputSpec((WindowSpec("1m"),), order_book=-1)
    with pytest.raises(ValueError, match="carries no order book"):
        order_book_part(np.zeros(context_size(off), np.float32), off)


def test_encoded_input_holds_the_cob_row_known_at_t_exactly(shared_data: Path) -> None:
    _, rows, _ = _capture(shared_data)
    samples = _samples(shared_data)
    assert len(samples) > 150
    checked = 0
    for k, t in enumerate(samples.time.tolist()):
        i = int(np.searchsorted(rows.known_at, t, side="right")) - 1  # newest row known by t
        values, present = order_book_part(samples.context[k], SPEC)
        if i < 0:
            assert not present and not values.any()
            continue
        assert rows.known_at[i] <= t and (i + 1 == len(rows) or rows.known_at[i + 1] > t)
        assert present
        np.testing.assert_array_equal(values, order_book_vector(rows, i))
        # spot-check against the named COB columns: bucket imbalances first, then log1p bid volumes
        np.testing.assert_array_equal(values[:40], rows.imbalance[i].astype(np.float32))
        np.testing.assert_array_equal(values[40:80], np.log1p(rows.bid_volume[i]).astype(np.float32))
        checked += 1
    assert checked > 150


def test_prediction_at_t_uses_no_cob_row_known_after_t(shared_data: Path) -> None:
    series, rows, trades = _capture(shared_data)
    cap = load_capture(shared_data, "binance", "BTCUSDT")
    model = _cnn()
    model.net.eval()
    config = CobConfig.for_symbol(SYMBOL)
    for t in (int(rows.known_at[70]), int(rows.known_at[300]) + 400, int(rows.known_at[-40]) - 1):
        full = encode(build_input_from_series(series, SYMBOL, t, SPEC, order_book=rows), SPEC)
        # 1. the rows known by t only
        known = rows.head(int(np.searchsorted(rows.known_at, t, side="right")))
        assert known.known_at.max() <= t < rows.known_at[len(known)]
        cut = encode(build_input_from_series(series, SYMBOL, t, SPEC, order_book=known), SPEC)
        # 2. the COB rows recomputed from the stream prefix: depth messages and trades with event time <= t
        n_msg = int(np.argmax(cap.messages.event_ms > t))
        n_tr = int(np.searchsorted(trades.ts, t, side="right"))
        prefix_trades = Trades(trades.ts[:n_tr], trades.trade_id[:n_tr], trades.price[:n_tr], trades.amount[:n_tr],
                               trades.is_buyer_maker[:n_tr])  # fmt: skip
        replayed = cob_features(cap.snapshot, cap.messages.head(n_msg), prefix_trades, config)
        assert replayed.known_at.max() <= t
        prefix = encode(build_input_from_series(series, SYMBOL, t, SPEC, order_book=replayed), SPEC)
        assert order_book_part(full.context, SPEC)[1]
        for other in (cut, prefix):
            np.testing.assert_array_equal(other.context, full.context)
            np.testing.assert_array_equal(other.windows, full.windows)
        a, b = model.predict(full, SYMBOL, t), model.predict(prefix, SYMBOL, t)
        assert (
            a.action_probabilities == b.action_probabilities
            and a.hidden_states["trunk"].tolist() == b.hidden_states["trunk"].tolist()
        )


def test_small_cnn_trains_with_the_order_book_and_reads_it(shared_data: Path, tmp_path: Path) -> None:
    samples = _samples(shared_data)
    present = np.array([order_book_part(c, SPEC)[1] for c in samples.context])
    assert present.mean() > 0.9
    model = _cnn()
    rows = np.arange(len(samples))
    batch = samples.batch(rows)
    before = model.eval_loss(batch)
    generator = np.random.default_rng(0)
    for _ in range(6):
        for chunk in np.array_split(generator.permutation(rows), 8):
            parts = model.train_step(samples.batch(chunk))
            assert all(np.isfinite(v) for v in parts.values())
    after = model.eval_loss(batch)
    loss_key = "loss" if "loss" in before else next(iter(before))
    assert after[loss_key] < before[loss_key]
    # the order-book part changes the prediction; the encoding of the same input without depth is flagged absent
    k = int(np.flatnonzero(present)[len(rows) // 2])
    with_book = model.predict((samples.windows[k], samples.context[k]))
    blank = samples.context[k].copy()
    blank[-order_book_size(SPEC) :] = 0.0
    without = model.predict((samples.windows[k], blank))
    assert with_book.hidden_states["trunk"].tolist() != without.hidden_states["trunk"].tolist()
    # the checkpoint records that it reads the order book and reloads to the same predictions
    path = tmp_path / "cnn.pt"
    model.save(path)
    blob = torch.load(path, weights_only=True)
    assert blob["config"]["shape"]["order_book"] == ORDER_BOOK_SIZE + 1
    loaded = CNNModel(config_from_dict(blob["config"]))
    loaded.load(path)
    assert loaded.predict((samples.windows[k], samples.context[k])).action_probabilities == with_book.action_probabilities


def test_checkpoints_without_order_book_keep_their_config() -> None:
    old = config_to_dict(CNNConfig())
    assert "order_book" not in old["shape"]  # byte-for-byte the pre-order-book config dict
    assert config_from_dict(old) == CNNConfig() and CNNConfig().shape.order_book == 0
    assert not any(k.startswith("order_book") for k in CNNModel().net.state_dict())
    with pytest.raises(ValueError, match=r"InputShape\.order_book"):
        InputShape(n_context=10, order_book=10)


def test_transformer_reads_the_order_book_token() -> None:
    shape = _shape()
    config = TransformerConfig(shape, d_model=32, n_heads=4, n_layers=1, d_ff=64, n_cross_layers=1, head_hidden=32)
    model = TransformerModel(config, seed=1)
    windows = np.random.default_rng(1).normal(size=(shape.n_windows, shape.window_len, 11)).astype(np.float32)
    context = np.zeros(shape.n_context, np.float32)
    plain = model.predict((windows, context))
    context[-1] = 1.0
    context[-shape.order_book : -1] = 0.5
    assert model.predict((windows, context)).hidden_states["trunk"].tolist() != plain.hidden_states["trunk"].tolist()
    assert any(k.startswith("order_book") for k in model.net.state_dict())


def test_absent_depth_is_zeros_with_flag_0_and_the_completeness_rule(shared_data: Path) -> None:
    series, rows, _ = _capture(shared_data)
    before = int(rows.known_at[0]) - 1  # no COB row known yet
    inp = build_input_from_series(series, SYMBOL, before, SPEC, order_book=rows)
    assert inp.order_book is None
    values, present = order_book_part(encode(inp, SPEC).context, SPEC)
    assert not present and not values.any()
    strict = replace(SPEC, require_order_book=True)
    result = check_completeness(inp, strict)
    assert "order_book: absent" in result.missing and result.parts["order_book"] == 0.0
    # a vector of another CobConfig's length is refused with the expected length named
    t = int(rows.known_at[100])
    bad = replace(build_input_from_series(series, SYMBOL, t, SPEC, order_book=rows), order_book=np.zeros(5, np.float32))
    with pytest.raises(ShapeError, match="expected 207 values"):
        encode(bad, SPEC)


def test_candles_are_from_the_captures_trades(shared_data: Path) -> None:
    series, _, trades = _capture(shared_data)
    one_s: Candles = series[(SYMBOL, "1s")].candles
    first = one_s.ts[0]
    in_first = (trades.ts >= first) & (trades.ts < first + 1000)
    assert one_s.volume[0] == pytest.approx(float(trades.amount[in_first].sum()))
    assert one_s.high[0] == float(trades.price[in_first].max())
