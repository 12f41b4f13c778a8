"""Use cases (import, backtest, optimize, train, predict, pivots) as plain functions: the CLI and the HTTP API call
them and only parse arguments and print."""
