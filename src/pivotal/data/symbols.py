"""Map the folder and file names of the shared Parquet layout to ccxt exchange ids and unified symbols.

``binance/BTCUSDT-1m-2021.parquet`` -> exchange ``binance``, symbol ``BTC/USDT``, kind ``candles``, timeframe ``1m``.
Venue folders name the market type as well as the exchange: ``binance-usdm`` is ccxt's ``binanceusdm``, whose
perpetuals are unified as ``BTC/USDT:USDT``; FTX ``BTC-PERP`` is ``BTC/USD:USD``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pivotal.core.timeframes import TIMEFRAMES

# Longest first, so BTCFDUSD splits as BTC/FDUSD and not BTCFD/USD.
KNOWN_QUOTES: tuple[str, ...] = tuple(
    sorted(
        ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI", "USD", "EUR", "GBP", "JPY", "TRY", "BTC", "ETH", "BNB"),
        key=len,
        reverse=True,
    )
)


@dataclass(frozen=True)
class Venue:
    """A venue folder of the shared layout: its ccxt exchange id and the market type its files hold."""

    exchange: str
    market: str  # 'spot' | 'linear' (USDT-margined perpetual) | 'ftx-perp'


VENUES: dict[str, Venue] = {
    "binance": Venue("binance", "spot"),
    "binance-usdm": Venue("binanceusdm", "linear"),
    "coinbase": Venue("coinbase", "spot"),
    "bitstamp": Venue("bitstamp", "spot"),
    "bitfinex": Venue("bitfinex", "spot"),
    "bybit": Venue("bybit", "spot"),
    "ftx": Venue("ftx", "ftx-perp"),
}

BOOK_KINDS = ("trades", "book_snapshot", "depth_updates", "book_ticker", "book15-1m")
_TF = "|".join(sorted(TIMEFRAMES, key=len, reverse=True))
_FILE_RE = re.compile(
    rf"^(?P<raw>[A-Z0-9]+(?:-PERP)?)-(?:(?P<tf>{_TF})(?:-(?P<y1>\d{{4}})(?:-(?P<y2>\d{{4}}))?)?|(?P<kind>{'|'.join(BOOK_KINDS)}))"
    r"\.parquet$"
)


@dataclass(frozen=True)
class SharedFile:
    """What one file of the shared layout holds."""

    exchange: str
    symbol: str
    kind: str  # 'candles' or one of BOOK_KINDS
    timeframe: str | None = None


def split_pair(raw: str) -> tuple[str, str]:
    """``BTCUSDT`` -> (``BTC``, ``USDT``) by the longest known quote-currency suffix."""
    text = raw.upper().replace("-", "").replace("_", "").replace("/", "")
    for quote in KNOWN_QUOTES:
        if text.endswith(quote) and len(text) > len(quote):
            return text[: -len(quote)], quote
    known = ", ".join(KNOWN_QUOTES)
    raise ValueError(f"cannot split symbol {raw!r} into base and quote: it ends in none of the known quotes ({known})")


def unified_symbol(market: str, raw: str) -> str:
    """The ccxt unified symbol of a venue-native name for the given market type."""
    if market == "ftx-perp":
        if not raw.endswith("-PERP"):
            raise ValueError(f"FTX symbol {raw!r} is not a perpetual (expected e.g. BTC-PERP)")
        return f"{raw.removesuffix('-PERP')}/USD:USD"
    base, quote = split_pair(raw)
    if market == "linear":
        return f"{base}/{quote}:{quote}"
    return f"{base}/{quote}"


def venue_of(folder: str) -> Venue:
    try:
        return VENUES[folder]
    except KeyError:
        raise ValueError(f"unknown venue folder {folder!r}; known: {', '.join(VENUES)}") from None


def parse_shared_path(path: Path | str) -> SharedFile:
    """Identify a file of the shared layout ``<venue>/<SYMBOL>-<kind>.parquet``; ValueError says what did not match."""
    p = Path(path)
    venue = venue_of(p.parent.name)
    m = _FILE_RE.match(p.name)
    if m is None:
        raise ValueError(
            f"{p}: file name does not follow <SYMBOL>-<timeframe>[-YYYY[-YYYY]].parquet"
            f" or <SYMBOL>-<{'|'.join(BOOK_KINDS)}>.parquet"
        )
    symbol = unified_symbol(venue.market, m["raw"])
    if m["tf"]:
        return SharedFile(venue.exchange, symbol, "candles", m["tf"])
    return SharedFile(venue.exchange, symbol, m["kind"])


def split_freqtrade_pair(stem: str) -> tuple[str, str]:
    """freqtrade file stem ``BTC_USDT-1m`` (or futures ``BTC_USDT_USDT-1m-futures``) -> (unified symbol, timeframe)."""
    name = stem.removesuffix("-futures").removesuffix("-spot")
    pair, sep, timeframe = name.rpartition("-")
    if not sep or timeframe not in TIMEFRAMES:
        raise ValueError(f"freqtrade file name {stem!r} does not end in -<timeframe> (e.g. BTC_USDT-1m.feather)")
    parts = pair.split("_")
    if len(parts) == 2:
        return f"{parts[0]}/{parts[1]}", timeframe
    if len(parts) == 3:
        return f"{parts[0]}/{parts[1]}:{parts[2]}", timeframe
    raise ValueError(f"freqtrade pair {pair!r} is not BASE_QUOTE or BASE_QUOTE_SETTLE")
