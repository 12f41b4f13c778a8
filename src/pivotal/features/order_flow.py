"""Market-microstructure fields of ``BaseDataInput`` from trade prints: aggressor-side order flow before t.

Only trades with ``ts < t`` count: the same boundary as candles (a bar closing at t holds trades before t), so
the fields never contain a print the candles of the input do not. For each trailing window w (seconds):

- ``trades_{w}s``: number of prints; ``buy_volume_{w}s`` / ``sell_volume_{w}s``: base volume whose aggressor
  bought / sold (Binance ``m`` = ``is_buyer_maker`` True means the aggressor sold);
- ``buy_ratio_{w}s``: buy / (buy + sell), 0.5 when the window has no volume;
- ``vwap_offset_{w}s``: ln(VWAP of the window / last trade price), 0 when the window is empty.

Plus ``last_trade_age_ms`` (t minus the newest print). No print inside the longest window: no fields (None).
"""

from __future__ import annotations

import math

import numpy as np

from pivotal.data.trades import Trades

DEFAULT_WINDOWS_MS: tuple[int, ...] = (10_000, 60_000, 300_000)


def order_flow(trades: Trades, t: int, windows_ms: tuple[int, ...] = DEFAULT_WINDOWS_MS) -> dict[str, float] | None:
    """Order-flow fields at t from ``trades`` sorted by ts (see module doc); None without a recent print."""
    if not windows_ms:
        return None
    stop = int(np.searchsorted(trades.ts, t, side="left"))
    first = int(np.searchsorted(trades.ts, t - max(windows_ms), side="left"))
    if stop <= first:
        return None
    last_price = float(trades.price[stop - 1])
    fields: dict[str, float] = {"last_trade_age_ms": float(t - int(trades.ts[stop - 1]))}
    for window in windows_ms:
        start = int(np.searchsorted(trades.ts, t - window, side="left"))
        fields.update(_window_fields(trades, start, stop, last_price, f"{window // 1000}s"))
    return fields


def _window_fields(trades: Trades, start: int, stop: int, last_price: float, name: str) -> dict[str, float]:
    amount, price = trades.amount[start:stop], trades.price[start:stop]
    sells = trades.is_buyer_maker[start:stop]
    sell_volume = float(amount[sells].sum())
    buy_volume = float(amount.sum()) - sell_volume
    total = buy_volume + sell_volume
    vwap_offset = math.log(float((price * amount).sum()) / total / last_price) if total > 0 else 0.0
    return {
        f"trades_{name}": float(stop - start),
        f"buy_volume_{name}": buy_volume,
        f"sell_volume_{name}": sell_volume,
        f"buy_ratio_{name}": buy_volume / total if total > 0 else 0.5,
        f"vwap_offset_{name}": vwap_offset,
    }
