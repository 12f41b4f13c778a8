"""Local stand-ins for external services (e.g. a Binance REST server) that serve real data from ../shared/data."""
