"""pivotal.features."""
