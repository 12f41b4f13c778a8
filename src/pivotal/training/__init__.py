"""pivotal.training."""
