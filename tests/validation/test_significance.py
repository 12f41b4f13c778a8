"""Significance statistics (pivotal.validation.significance) against hand-computed values and known properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pivotal.core.stats import sharpe
from pivotal.validation.significance import (
    bootstrap_test,
    deflated_sharpe_ratio,
    degradation,
    expected_max_sharpe,
    pbo_cscv,
    probabilistic_sharpe_ratio,
)

pytestmark = pytest.mark.unit


def test_dsr_reproduces_the_paper_example() -> None:
    """Bailey & López de Prado (2014), section 'A numerical example': T = 1250 daily returns, annualised SR 2.5,
    skew -3, kurtosis 10, N = 100 trials with annualised Sharpe variance 0.5 -> SR0 ≈ 0.1132 per day, DSR ≈ 0.9004.
    By hand: sqrt(0.5/250) = 0.044721; Z(1-1/100) = 2.326348, Z(1-1/(100e)) = 2.680210;
    SR0 = 0.044721·(0.422784·2.326348 + 0.577216·2.680210) = 0.113172;
    DSR = Φ((0.158114 - 0.113170)·sqrt(1249) / sqrt(1 + 3·0.158114 + 9/4·0.025)) = Φ(1.2838) = 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.113172, abs=1e-6)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(250), sr0, 1250, skew=-3.0, kurtosis=10.0)
    assert dsr == pytest.approx(0.9004, abs=1e-4)


def test_psr_against_zero_benchmark_by_hand() -> None:
    # SR 0.1, T 101, normal (skew 0, kurt 3): Φ(0.1·10 / sqrt(1 + 0.5·0.01)) = Φ(0.997509) = 0.840741
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101, 0.0, 3.0) == pytest.approx(0.840741, abs=1e-6)


def test_dsr_decreases_with_the_number_of_trials() -> None:
    returns = np.random.default_rng(7).normal(0.002, 0.01, size=400)
    values = [deflated_sharpe_ratio(returns, n, sharpe_var=0.01) for n in (1, 2, 10, 100, 1000, 201_600)]
    assert all(a > b for a, b in itertools.pairwise(values))
    assert values[0] == pytest.approx(probabilistic_sharpe_ratio(sharpe(returns), 0.0, 400, *_moments(returns)))


def _moments(r: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    return float(stats.skew(r, bias=False)), float(stats.kurtosis(r, fisher=False, bias=False))


def test_dsr_needs_returns() -> None:
    assert math.isnan(deflated_sharpe_ratio(np.array([0.01, 0.02]), 10, 0.1))


def test_bootstrap_p_value_and_z_score() -> None:
    r = np.array([0.01, 0.02, -0.005, 0.015, 0.0, 0.012])
    result = bootstrap_test(r, n_boot=5000, seed=1)
    # z by hand: mean 0.0086667, sd(ddof=1) 0.0094163, z = 0.0086667 / (0.0094163 / sqrt(6)) = 2.25449
    assert result.z_score == pytest.approx(2.25449, abs=1e-4)
    assert result.n == 6 and 0 < result.p_value < 0.05
    assert bootstrap_test(-r, n_boot=5000, seed=1).p_value > 0.95
    assert bootstrap_test(r, n_boot=5000, seed=1) == result  # seeded
    assert math.isnan(bootstrap_test(np.array([0.1])).p_value)


def test_bootstrap_on_noise_is_not_significant() -> None:
    noise = np.random.default_rng(3).normal(0.0, 0.01, size=500)
    assert bootstrap_test(noise - noise.mean(), seed=0).p_value == pytest.approx(0.5, abs=0.05)


def test_pbo_of_pure_noise_is_about_one_half() -> None:
    perf = np.random.default_rng(42).normal(0.0, 1.0, size=(200, 16))
    result = pbo_cscv(perf)
    assert result.n_combinations == math.comb(16, 8) == 12870
    assert result.pbo == pytest.approx(0.5, abs=0.1)


def test_pbo_of_a_truly_better_trial_is_near_zero() -> None:
    perf = np.random.default_rng(0).normal(0.0, 1.0, size=(50, 10))
    perf[17] += 3.0  # one trial with a real, persistent edge
    assert pbo_cscv(perf).pbo == 0.0


def test_pbo_by_hand_on_a_3_by_4_matrix() -> None:
    """Trials 0 and 1 each shine in one half of the series and are worst in the other; trial 2 is flat.

    Splits {0,1} and {2,3}: the IS winner ranks 1 of 3 OOS, omega = 1/4, logit ln(1/3) < 0 (overfit).
    The 4 mixed splits: trials 0 and 1 tie IS (mean 1), argmax takes trial 0, whose OOS mean 1 ties trial 1:
    average rank 2.5, omega = 2.5/4, logit > 0. PBO = 2/6."""
    perf = np.array([[3.0, 3.0, -1.0, -1.0], [-1.0, -1.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0]])
    result = pbo_cscv(perf)
    assert result.n_combinations == 6
    assert result.logits[0] == pytest.approx(math.log(1 / 3))
    assert result.logits[5] == pytest.approx(math.log(1 / 3))
    assert result.pbo == pytest.approx(2 / 6)


def test_pbo_regroups_columns_and_validates_shape() -> None:
    perf = np.random.default_rng(1).normal(size=(20, 40))
    assert pbo_cscv(perf, n_slices=8).n_combinations == math.comb(8, 4)
    with pytest.raises(ValueError, match="even number of slices"):
        pbo_cscv(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=">= 2 trials"):
        pbo_cscv(np.zeros((1, 4)))


def test_degradation_ratio_and_flag() -> None:
    d = degradation(np.array([0.02, 0.02]), np.array([0.01, 0.005]))
    assert d.ratio == pytest.approx(0.375) and d.overfit
    assert not degradation(np.array([0.02]), np.array([0.012])).overfit
    assert degradation(np.array([0.02]), np.array([0.012]), pbo=0.7).overfit
    no_edge = degradation(np.array([-0.01]), np.array([0.01]))
    assert math.isnan(no_edge.ratio) and no_edge.overfit


@given(st.lists(st.floats(-0.2, 0.2, allow_nan=False), min_size=3, max_size=60), st.floats(0.0, 0.5))
@settings(max_examples=60, deadline=None)
def test_sharpe_benchmark_never_negative_and_dsr_in_unit_interval(returns: list[float], var: float) -> None:
    assert expected_max_sharpe(50, var) >= 0.0
    dsr = deflated_sharpe_ratio(np.array(returns), 50, var)
    assert math.isnan(dsr) or 0.0 <= dsr <= 1.0


def test_constant_returns_have_no_sharpe() -> None:
    flat = np.full(50, 0.01) + np.arange(50) * 1e-19  # equal up to float noise
    assert math.isnan(deflated_sharpe_ratio(flat, 10, 0.1))
    assert math.isnan(bootstrap_test(flat).z_score)
