"""Validation (layer 8): the walk-forward splitter and the significance statistics.

Pure numpy/scipy on timestamps, returns and trial matrices; no optuna, no ray, no strategy or store knowledge, so
parameter search (``pivotal.optimize``) and model training (``pivotal.training``) split and judge data the same way.
"""
