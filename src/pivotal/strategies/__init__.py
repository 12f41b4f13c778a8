"""Trading strategies behind one registry (``registry.get_strategy(name)``), one module or subpackage each.

- ``base``: the ``Strategy`` seam (protocol + base class with causal history, indicators and pivots);
- ``registry``: name -> ``StrategySpec`` (factory, defaults, search space, optional sweep adapter);
- ``ls3``: LIQUIDITY SWEEP V3 (spec B) — event form, numba sweep, parameters and grid;
- ``sma_cross``: long-only SMA crossover used for engine comparisons.
"""
