"""Is a backtest result more than luck? Pure numpy/scipy statistics on returns and trial matrices.

- :func:`bootstrap_test`: one-sided bootstrap p-value (H0: mean return <= 0) and the t-style z-score of the mean.
- :func:`deflated_sharpe_ratio`: Bailey & López de Prado (2014), the probability that the true Sharpe exceeds the
  best Sharpe expected from ``n_trials`` unskilled trials with the given variance of trial Sharpes.
- :func:`pbo_cscv`: probability of backtest overfitting by combinatorially symmetric cross-validation
  (Bailey, Borwein, López de Prado & Zhu 2015).
- :func:`degradation`: out-of-sample / in-sample mean return, and the overfitting flag built on it.

All Sharpe ratios here are per observation (per trade), not annualised, and come from
:func:`pivotal.core.stats.sharpe` (NaN when undefined). A series that is constant up to float noise has no Sharpe
here either (:func:`is_constant`): its tiny deviation would make the ratio, skew and kurtosis huge instead of absent.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from pivotal.core.stats import sharpe as core_sharpe

EULER_GAMMA = 0.5772156649015329


@dataclass(frozen=True)
class BootstrapResult:
    p_value: float
    z_score: float
    n: int


def bootstrap_test(returns: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> BootstrapResult:
    """P(mean of a resample of the zero-centred returns >= observed mean); ``nan`` with fewer than 2 returns."""
    r = np.asarray(returns, dtype=np.float64)
    n = len(r)
    if n < 2:
        return BootstrapResult(math.nan, math.nan, n)
    mean, sd = float(r.mean()), float(r.std(ddof=1))
    z = math.nan if sd == 0.0 or is_constant(r) else mean / (sd / math.sqrt(n))
    centred = r - mean
    rng = np.random.default_rng(seed)
    boot_means = centred[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    # +1 in numerator and denominator: the observed sample is one of the possible resamples (never p = 0)
    p = (np.count_nonzero(boot_means >= mean) + 1) / (n_boot + 1)
    return BootstrapResult(float(p), float(z), n)


def is_constant(r: np.ndarray) -> bool:
    """Equal up to float noise: a Sharpe ratio or higher moments of such a series are meaningless, not huge."""
    return bool(np.ptp(r) <= 1e-12 * max(float(np.abs(r).max()), 1e-300))


def _sharpe(r: np.ndarray) -> float:
    """Per-observation Sharpe (core.stats), NaN for a series constant up to float noise."""
    return math.nan if len(r) < 2 or is_constant(r) else core_sharpe(r)


def expected_max_sharpe(n_trials: int, sharpe_var: float) -> float:
    """SR0: the expected maximum Sharpe of ``n_trials`` independent zero-skill trials (False Strategy Theorem)."""
    if n_trials < 2 or not sharpe_var > 0:
        return 0.0
    z1 = stats.norm.ppf(1.0 - 1.0 / n_trials)
    z2 = stats.norm.ppf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sharpe_var) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe_ratio(sharpe: float, benchmark: float, n_obs: int, skew: float, kurtosis: float) -> float:
    """PSR: P(true SR > benchmark) given an observed per-observation SR, with non-normal returns (kurtosis not excess)."""
    if n_obs < 2 or not math.isfinite(sharpe):
        return math.nan
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe * sharpe
    if denom <= 0:
        return math.nan
    return float(stats.norm.cdf((sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(denom)))


def deflated_sharpe_ratio(returns: np.ndarray, n_trials: int, sharpe_var: float) -> float:
    """DSR of the selected strategy's returns after ``n_trials`` trials whose Sharpes have variance ``sharpe_var``."""
    r = np.asarray(returns, dtype=np.float64)
    sr = _sharpe(r)
    if len(r) < 3 or math.isnan(sr):
        return math.nan
    skew = float(stats.skew(r, bias=False))
    kurt = float(stats.kurtosis(r, fisher=False, bias=False))
    return probabilistic_sharpe_ratio(sr, expected_max_sharpe(n_trials, sharpe_var), len(r), skew, kurt)


@dataclass(frozen=True)
class PBOResult:
    pbo: float
    logits: np.ndarray
    n_combinations: int


def pbo_cscv(performance: np.ndarray, n_slices: int | None = None) -> PBOResult:
    """PBO from a (trials × time-slices) matrix of per-slice performance (e.g. returns).

    For every split of the S slices into halves, the trial with the best mean in-sample performance is ranked among
    all trials by its mean out-of-sample performance; PBO is the share of splits where it lands at or below the
    median (logit of its relative rank <= 0). ``n_slices`` regroups the columns into that many contiguous blocks.
    """
    m = np.asarray(performance, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] < 2:
        raise ValueError(f"pbo_cscv needs a (trials × slices) matrix with >= 2 trials, got shape {m.shape}")
    if n_slices is not None:
        blocks = np.array_split(np.arange(m.shape[1]), n_slices)
        m = np.stack([m[:, b].sum(axis=1) for b in blocks], axis=1)
    n_trials, s = m.shape
    if s < 2 or s % 2:
        raise ValueError(f"pbo_cscv needs an even number of slices >= 2, got {s}")
    logits = []
    for is_cols in itertools.combinations(range(s), s // 2):
        is_mask = np.zeros(s, dtype=bool)
        is_mask[list(is_cols)] = True
        best = int(np.argmax(m[:, is_mask].mean(axis=1)))
        oos = m[:, ~is_mask].mean(axis=1)
        rank = float(stats.rankdata(oos)[best])  # 1 = worst; ties share the average rank
        omega = rank / (n_trials + 1)
        logits.append(math.log(omega / (1.0 - omega)))
    lam = np.array(logits)
    return PBOResult(float(np.mean(lam <= 0)), lam, len(lam))


@dataclass(frozen=True)
class Degradation:
    ratio: float  # mean OOS return per trade / mean IS return per trade
    overfit: bool


def degradation(is_returns: np.ndarray, oos_returns: np.ndarray, threshold: float = 0.5, pbo: float | None = None) -> Degradation:
    """Flag overfitting when OOS keeps less than ``threshold`` of the IS mean return, or PBO > 0.5.

    A non-positive IS mean gives ratio ``nan`` and the flag set: there was no edge to keep.
    """
    is_mean = float(np.mean(is_returns)) if len(is_returns) else math.nan
    oos_mean = float(np.mean(oos_returns)) if len(oos_returns) else math.nan
    ratio = oos_mean / is_mean if is_mean > 0 and math.isfinite(oos_mean) else math.nan
    overfit = not (ratio >= threshold) or (pbo is not None and pbo > 0.5)
    return Degradation(ratio, overfit)
