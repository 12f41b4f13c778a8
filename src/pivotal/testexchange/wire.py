"""Binance's JSON shapes for orders, fills, klines, trades and depth (strings for decimals, as Binance sends them)."""

from __future__ import annotations

from decimal import Decimal

from pivotal.core.timeframes import TIMEFRAMES
from pivotal.data.candles import Candles
from pivotal.testexchange.matching import Fill, Order
from pivotal.testexchange.tape import Depth, Trades


def s8(x: Decimal | None) -> str:
    return f"{(x or Decimal(0)):.8f}"


def num(x: float) -> str:
    # repr() is the shortest string that parses back to the same float: served values equal the recorded file exactly.
    return repr(float(x))


def kline_row(c: Candles, i: int, timeframe: str) -> list:
    t = int(c.ts[i])
    prices = [num(a[i]) for a in (c.open, c.high, c.low, c.close, c.volume)]
    return [t, *prices, t + TIMEFRAMES[timeframe] - 1, "0", 0, "0", "0", "0"]


def kline_event(c: Candles, i: int, timeframe: str, symbol: str, event_ms: int, closed: bool) -> dict:
    t = int(c.ts[i])
    k = {
        "t": t,
        "T": t + TIMEFRAMES[timeframe] - 1,
        "s": symbol,
        "i": timeframe,
        "f": -1,
        "L": -1,
        "o": num(c.open[i]),
        "c": num(c.close[i]),
        "h": num(c.high[i]),
        "l": num(c.low[i]),
        "v": num(c.volume[i]),
        "n": 0,
        "x": closed,
        "q": "0",
        "V": "0",
        "Q": "0",
        "B": "0",
    }
    return {"e": "kline", "E": event_ms, "s": symbol, "k": k}


def open_kline_event(c: Candles, i: int, timeframe: str, symbol: str) -> dict:
    """Bar ``i``'s in-progress kline (``x: false``) as it stands at its open: its recorded open, no volume yet."""
    event = kline_event(c, i, timeframe, symbol, int(c.ts[i]), closed=False)
    k = event["k"]
    k.update(h=k["o"], l=k["o"], c=k["o"], v=num(0.0))
    return event


def trade_rest(tr: Trades, i: int) -> dict:
    price, qty = float(tr.price[i]), float(tr.qty[i])
    return {
        "id": int(tr.trade_id[i]),
        "price": num(price),
        "qty": num(qty),
        "quoteQty": num(price * qty),
        "time": int(tr.ts[i]),
        "isBuyerMaker": bool(tr.buyer_maker[i]),
        "isBestMatch": True,
    }


def trade_event(tr: Trades, i: int, symbol: str) -> dict:
    return {
        "e": "trade",
        "E": int(tr.event_ts[i]),
        "s": symbol,
        "t": int(tr.trade_id[i]),
        "p": num(tr.price[i]),
        "q": num(tr.qty[i]),
        "T": int(tr.ts[i]),
        "m": bool(tr.buyer_maker[i]),
        "M": True,
    }


def depth_event(d: Depth, i: int, symbol: str) -> dict:
    lo, hi = d.msg_rows[i]
    bids = [[num(d.price[j]), num(d.qty[j])] for j in range(lo, hi) if d.side_is_bid[j]]
    asks = [[num(d.price[j]), num(d.qty[j])] for j in range(lo, hi) if not d.side_is_bid[j]]
    if d.msg_prev is not None and d.msg_tx is not None:  # USD-M: transaction time T and the previous u, pu
        return {
            "e": "depthUpdate",
            "E": int(d.msg_ts[i]),
            "T": int(d.msg_tx[i]),
            "s": symbol,
            "U": int(d.msg_first[i]),
            "u": int(d.msg_final[i]),
            "pu": int(d.msg_prev[i]),
            "b": bids,
            "a": asks,
        }
    return {
        "e": "depthUpdate",
        "E": int(d.msg_ts[i]),
        "s": symbol,
        "U": int(d.msg_first[i]),
        "u": int(d.msg_final[i]),
        "b": bids,
        "a": asks,
    }


def order_json(o: Order) -> dict:
    """GET /api/v3/order, openOrders, allOrders."""
    return {
        "symbol": o.symbol,
        "orderId": o.order_id,
        "orderListId": -1,
        "clientOrderId": o.client_id,
        "price": s8(o.price),
        "origQty": s8(o.qty),
        "executedQty": s8(o.executed),
        "cummulativeQuoteQty": s8(o.cum_quote),
        "status": o.status,
        "timeInForce": o.time_in_force,
        "type": o.type,
        "side": o.side,
        "stopPrice": s8(o.stop_price),
        "icebergQty": "0.00000000",
        "time": o.time,
        "updateTime": o.update_time,
        "isWorking": o.type != "STOP_LOSS_LIMIT" or o.triggered,
        "workingTime": o.time,
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def fill_json(f: Fill) -> dict:
    return {
        "price": s8(f.price),
        "qty": s8(f.qty),
        "commission": s8(f.commission),
        "commissionAsset": f.commission_asset,
        "tradeId": f.trade_id,
    }


def new_order_response(o: Order, transact_ms: int) -> dict:
    """POST /api/v3/order with newOrderRespType FULL (Binance's default for MARKET and LIMIT)."""
    body = order_json(o)
    for key in ("icebergQty", "time", "updateTime", "isWorking", "origQuoteOrderQty"):
        body.pop(key)
    if o.type != "STOP_LOSS_LIMIT":
        body.pop("stopPrice")
    body["transactTime"] = transact_ms
    body["fills"] = [fill_json(f) for f in o.fills]
    return body


def my_trade_json(f: Fill, symbol: str) -> dict:
    return {
        "symbol": symbol,
        "id": f.trade_id,
        "orderId": f.order_id,
        "orderListId": -1,
        "price": s8(f.price),
        "qty": s8(f.qty),
        "quoteQty": s8(f.quote_qty),
        "commission": s8(f.commission),
        "commissionAsset": f.commission_asset,
        "time": f.time,
        "isBuyer": f.is_buyer,
        "isMaker": f.is_maker,
        "isBestMatch": True,
    }


def execution_report(o: Order, exec_type: str, fill: Fill | None, event_ms: int) -> dict:
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": o.symbol,
        "c": o.client_id,
        "S": o.side,
        "o": o.type,
        "f": o.time_in_force,
        "q": s8(o.qty),
        "p": s8(o.price),
        "P": s8(o.stop_price),
        "F": "0.00000000",
        "g": -1,
        "C": o.client_id if exec_type == "CANCELED" else "",
        "x": exec_type,
        "X": o.status,
        "r": "NONE",
        "i": o.order_id,
        "l": s8(fill.qty if fill else None),
        "z": s8(o.executed),
        "L": s8(fill.price if fill else None),
        "n": s8(fill.commission if fill else None),
        "N": fill.commission_asset if fill else None,
        "T": fill.time if fill else o.update_time,
        "t": fill.trade_id if fill else -1,
        "v": 0,
        "I": 0,
        "w": o.is_open,
        "m": bool(fill and fill.is_maker),
        "M": False,
        "O": o.time,
        "Z": s8(o.cum_quote),
        "Y": s8(fill.quote_qty if fill else None),
        "Q": "0.00000000",
        "W": o.time,
        "V": "EXPIRE_MAKER",
    }


def account_position(balances: list[tuple[str, Decimal, Decimal]], event_ms: int) -> dict:
    return {
        "e": "outboundAccountPosition",
        "E": event_ms,
        "u": event_ms,
        "B": [{"a": a, "f": s8(f), "l": s8(lk)} for a, f, lk in balances],
    }
