"""The real ccxt / ccxt.pro ``binance`` clients, unmodified, with only their URLs (and options) pointed at a test
exchange. ccxt is imported here, lazily, so that importing the package stays light."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse


def _config(api_key: str, secret: str, timeout_ms: int, extra: dict[str, Any]) -> dict[str, Any]:
    options = {
        "fetchMarkets": {"types": ["spot"]},
        "fetchMargins": False,
        "fetchCurrencies": False,
        "fetchTradesMethod": "publicGetTrades",
    }
    config = {"apiKey": api_key, "secret": secret, "enableRateLimit": False, "timeout": timeout_ms, "options": options}
    options.update(extra.pop("options", {}))
    config.update(extra)
    return config


def _point(client: Any, urls: Mapping[str, str]) -> None:
    """Swap the host of every REST base URL (keeping the path) and the spot WebSocket URLs, in the live, testnet
    and demo URL sets alike, so that ``set_sandbox_mode(True)`` or demo trading still reach the test exchange."""
    for section in ("api", "test", "demo"):
        table = client.urls.get(section)
        if not isinstance(table, dict):
            continue
        for key, value in list(table.items()):
            if isinstance(value, str) and value.startswith("http"):
                table[key] = urls["rest"] + urlparse(value).path
        ws = table.get("ws")
        if isinstance(ws, dict):
            ws.update(spot=urls["ws"], margin=urls["ws"])
            if isinstance(ws.get("ws-api"), dict):
                ws["ws-api"] = dict(ws["ws-api"], spot=urls["ws_api"])


def ccxt_client(urls: Mapping[str, str], api_key: str, secret: str, timeout_ms: int = 3000, **config: Any) -> Any:
    """``ccxt.binance`` whose every REST base URL points at ``urls['rest']`` (spot only)."""
    import ccxt

    client = ccxt.binance(_config(api_key, secret, timeout_ms, dict(config)))
    _point(client, urls)
    return client


def ccxt_pro_client(
    urls: Mapping[str, str], api_key: str, secret: str, timeout_ms: int = 3000, venue: str = "spot", **config: Any
) -> Any:
    """``ccxt.pro.binance`` with REST, market-data streams and the WebSocket API pointed at the test exchange;
    ``venue="usdm"``: ``ccxt.pro.binanceusdm`` (linear markets, the USD-M socket base)."""
    import ccxt.pro

    if venue == "usdm":
        extra = dict(config)
        extra["options"] = {"fetchMarkets": {"types": ["linear"]}, **extra.get("options", {})}
        client = ccxt.pro.binanceusdm(_config(api_key, secret, timeout_ms, extra))
        _point(client, urls)
        ws = client.urls["api"]["ws"]
        ws.update({k: urls["ws"] for k in ("linear", "future") if k in ws})
        return client
    client = ccxt.pro.binance(_config(api_key, secret, timeout_ms, dict(config)))
    _point(client, urls)
    return client
