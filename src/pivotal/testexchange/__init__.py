"""A local exchange on 127.0.0.1 that speaks Binance spot's REST and WebSocket wire formats.

Public data is replayed from the recorded files in ``../shared/data`` on a replay clock; a matching engine fills
orders against the replayed trades and bars; faults are injected per test. The runtime reaches it over the network
only (import-linter forbids ``pivotal.runtime`` from importing this package). See docs/testexchange.md.
"""

from pivotal.testexchange.clients import ccxt_client, ccxt_pro_client
from pivotal.testexchange.faults import Faults
from pivotal.testexchange.server import TestExchange

__all__ = ["Faults", "TestExchange", "ccxt_client", "ccxt_pro_client"]
