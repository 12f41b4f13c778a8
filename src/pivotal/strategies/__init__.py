"""Trading strategies, one file each (event-driven ``Strategy`` implementations plus their fast sweep paths).

- ``liquidity_sweep``: LIQUIDITY SWEEP V3 (spec B), event-driven reference;
- ``ls3_sweep`` / ``ls3_kernels`` / ``ls3_params``: its numba grid/random-search fast path and the 201,600-point grid;
- ``sma_cross``: long-only SMA crossover used for engine comparisons.
"""
