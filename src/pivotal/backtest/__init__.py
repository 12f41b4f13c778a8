"""pivotal.backtest."""
