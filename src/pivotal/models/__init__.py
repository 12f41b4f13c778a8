"""pivotal.models."""
