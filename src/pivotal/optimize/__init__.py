"""Strategy optimisation: grid/random/Bayesian search, resumable studies, walk-forward, significance, configurations."""
