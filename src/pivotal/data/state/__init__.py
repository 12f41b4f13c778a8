"""Application state behind repositories, each with a versioned schema (see ``migrations``); market data stays in the
``MarketStore``."""
