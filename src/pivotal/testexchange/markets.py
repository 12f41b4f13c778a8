"""Symbol rules (filters) as Binance publishes them, and the ``/exchangeInfo`` symbol entries built from them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pivotal.core.errors import UserInputError


@dataclass(frozen=True)
class SymbolRules:
    """One spot symbol's trading filters; every quantity and price the engine accepts satisfies them."""

    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    min_price: Decimal
    max_price: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal


def _rules(symbol: str, base: str, tick: str, max_price: str, step: str, max_qty: str) -> SymbolRules:
    return SymbolRules(
        symbol,
        base,
        "USDT",
        Decimal(tick),
        Decimal(tick),
        Decimal(max_price),
        Decimal(step),
        Decimal(step),
        Decimal(max_qty),
        Decimal(5),
    )


# Binance's own values, from GET https://api.binance.com/api/v3/exchangeInfo?symbol=BTCUSDT (and ETHUSDT, SOLUSDT)
# as published 2024-2025: BTCUSDT PRICE_FILTER tickSize 0.01 (min 0.01, max 1000000), LOT_SIZE stepSize/minQty
# 0.00001 (max 9000), NOTIONAL minNotional 5; ETHUSDT tickSize 0.01, stepSize/minQty 0.0001 (max 9000), minNotional 5;
# SOLUSDT tickSize 0.01 (max 10000), stepSize/minQty 0.001 (max 9000000), minNotional 5.
BINANCE_RULES: dict[str, SymbolRules] = {
    "BTCUSDT": _rules("BTCUSDT", "BTC", "0.01", "1000000", "0.00001", "9000"),
    "ETHUSDT": _rules("ETHUSDT", "ETH", "0.01", "1000000", "0.0001", "9000"),
    "SOLUSDT": _rules("SOLUSDT", "SOL", "0.01", "10000", "0.001", "9000000"),
}


def market_id(symbol: str) -> str:
    """``BTC/USDT`` or ``BTCUSDT`` → ``BTCUSDT``."""
    return symbol.replace("/", "").replace("-", "").upper()


def rules_for(symbol: str) -> SymbolRules:
    try:
        return BINANCE_RULES[market_id(symbol)]
    except KeyError:
        known = ", ".join(BINANCE_RULES)
        raise UserInputError(f"test exchange: no Binance filters known for {symbol!r}; use one of {known}") from None


def _s(value: Decimal) -> str:
    return f"{value:.8f}"


def symbol_info(rules: SymbolRules) -> dict:
    """The ``symbols[]`` entry of Binance's ``/api/v3/exchangeInfo`` for one symbol."""
    return {
        "symbol": rules.symbol,
        "status": "TRADING",
        "baseAsset": rules.base,
        "baseAssetPrecision": 8,
        "quoteAsset": rules.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": _s(rules.min_price),
                "maxPrice": _s(rules.max_price),
                "tickSize": _s(rules.tick_size),
            },
            {"filterType": "LOT_SIZE", "minQty": _s(rules.min_qty), "maxQty": _s(rules.max_qty), "stepSize": _s(rules.step_size)},
            {
                "filterType": "NOTIONAL",
                "minNotional": _s(rules.min_notional),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


# USD-M perpetuals (GET https://fapi.binance.com/fapi/v1/exchangeInfo, as published in 2024): BTCUSDT PRICE_FILTER
# tickSize 0.10, LOT_SIZE stepSize/minQty 0.001, MIN_NOTIONAL 100; ETHUSDT tickSize 0.01, stepSize/minQty 0.001,
# MIN_NOTIONAL 20. The USD-M venue of the test exchange serves market data only (no order matching), so these rules
# only shape the markets ccxt loads.
USDM_RULES: dict[str, SymbolRules] = {
    "BTCUSDT": SymbolRules(
        "BTCUSDT", "BTC", "USDT", *(Decimal(x) for x in ("0.10", "556.80", "4529764", "0.001", "0.001", "1000", "100"))
    ),
    "ETHUSDT": SymbolRules(
        "ETHUSDT", "ETH", "USDT", *(Decimal(x) for x in ("0.01", "39.86", "306177", "0.001", "0.001", "10000", "20"))
    ),
}


def usdm_symbol_info(rules: SymbolRules) -> dict:
    """The ``symbols[]`` entry of Binance's ``/fapi/v1/exchangeInfo`` for one perpetual."""
    return {
        "symbol": rules.symbol,
        "pair": rules.symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "baseAsset": rules.base,
        "quoteAsset": rules.quote,
        "marginAsset": rules.quote,
        "pricePrecision": max(0, -rules.tick_size.normalize().as_tuple().exponent),  # type: ignore[operator]
        "quantityPrecision": max(0, -rules.step_size.normalize().as_tuple().exponent),  # type: ignore[operator]
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": str(rules.min_price),
                "maxPrice": str(rules.max_price),
                "tickSize": str(rules.tick_size),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": str(rules.min_qty),
                "maxQty": str(rules.max_qty),
                "stepSize": str(rules.step_size),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": str(rules.min_qty),
                "maxQty": str(rules.max_qty),
                "stepSize": str(rules.step_size),
            },
            {"filterType": "MIN_NOTIONAL", "notional": str(rules.min_notional)},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }
