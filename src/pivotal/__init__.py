"""pivotal: crypto market-structure research and self-training trading."""

__version__ = "0.1.0"
