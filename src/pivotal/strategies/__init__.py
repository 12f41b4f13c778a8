"""pivotal.strategies."""
