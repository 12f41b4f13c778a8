"""pivotal.optimize."""
