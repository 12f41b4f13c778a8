"""Other venues' book updates in one shape, their sequence rules and OKX's checksum: pure, no I/O.

Why here: the runtime adapters (``runtime.venues``) and the local venue servers of the tests
(``testexchange.venue_*``) must agree on the number formatting the checksum hashes and on what a gap is; one
definition keeps the two sides from drifting.

Sequence rules (what each adapter checks before applying an update; a break marks the book unsynced and asks for a
new snapshot on the socket):

* Coinbase Advanced Trade (``level2`` channel, ``l2_data`` messages): ``sequence_num`` counts every message of one
  WebSocket connection; a message whose number is not the previous one + 1 means one was missed. The chain restarts
  with each connection (its snapshot).
* Bybit v5 ``orderbook.{depth}.{symbol}``: a ``delta`` must carry ``u`` = previous ``u`` + 1; a ``snapshot`` replaces
  the book (also the ``u`` = 1 snapshot Bybit sends after a service restart).
* OKX v5 ``books``: an ``update`` must carry ``prevSeqId`` = the previous ``seqId`` (a snapshot has ``prevSeqId`` -1),
  and the CRC32 ``checksum`` of the top 25 levels after the update (``okx_checksum``) must match.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

__all__ = ["BookUpdate", "chain_break", "iso_ms", "number_text", "okx_checksum"]


@dataclass(frozen=True)
class BookUpdate:
    """One venue book message in a common shape: ``seq`` is the id the chain rule reads (Coinbase ``sequence_num``,
    Bybit ``u``, OKX ``seqId``), ``prev`` the id it must continue (OKX ``prevSeqId``; None where the rule is
    ``seq == last + 1``), ``bids``/``asks`` (k, 2) float arrays of absolute quantities (0 removes)."""

    market_id: str
    snapshot: bool
    seq: int
    prev: int | None
    bids: np.ndarray
    asks: np.ndarray
    event_ms: int | None
    checksum: int | None = None


def chain_break(last: int, update: BookUpdate) -> tuple[int, int] | None:
    """(expected, received) when ``update`` (a delta) does not continue the chain ending at ``last``; None when it
    does. Snapshots always start a new chain."""
    if update.snapshot:
        return None
    if update.prev is not None:
        return None if update.prev == last else (last, update.prev)
    return None if update.seq == last + 1 else (last + 1, update.seq)


def number_text(value: float) -> str:
    """A price or quantity as a venue writes it: positional, no exponent, no trailing zeros (``1e-05`` → ``0.00001``,
    ``58000.0`` → ``58000``); what ccxt's ``number_to_string`` gives, so a checksum computed on parsed floats matches
    the one computed on the server's text."""
    return str(np.format_float_positional(float(value), trim="-"))


def okx_checksum(bids: Sequence[Sequence[float]] | np.ndarray, asks: Sequence[Sequence[float]] | np.ndarray) -> int:
    """OKX's book checksum: CRC32 (signed 32-bit) of ``bid:qty:ask:qty:…`` over the best 25 levels per side,
    interleaved, bids descending and asks ascending (a side that runs out just stops contributing)."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts.append(f"{number_text(bids[i][0])}:{number_text(bids[i][1])}")
        if i < len(asks):
            parts.append(f"{number_text(asks[i][0])}:{number_text(asks[i][1])}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def iso_ms(text: str) -> int:
    """Epoch ms of an ISO-8601 UTC time as Coinbase writes it (``2023-02-09T20:32:50.714964855Z``: nanoseconds)."""
    body = text.rstrip("Z")
    if "." in body:
        head, frac = body.split(".", 1)
        body = f"{head}.{frac[:6]:0<6}"
    return (datetime.fromisoformat(body + "+00:00") - _EPOCH) // timedelta(milliseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
