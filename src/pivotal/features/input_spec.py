"""Which candle windows a model input needs, and the knobs of validation and encoding.

The design document asks for 300 closed bars of 1s, 1m, 1h and 1d for the primary symbol plus 300 x 1s of
BTC/USDT. Real data rarely has all of them (the shared data has no Binance 1s at all), so the set is
configuration; ``PRESETS`` holds sets that the shared data can satisfy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from pivotal.core.timeframes import timeframe_ms
from pivotal.features.order_flow import DEFAULT_WINDOWS_MS
from pivotal.structure.types import PivotParams

PRIMARY = ""  # WindowSpec.symbol placeholder for "the input's primary symbol"


@dataclass(frozen=True)
class WindowSpec:
    """``length`` closed bars of ``timeframe`` for ``symbol`` (``PRIMARY`` = the input's own symbol)."""

    timeframe: str
    length: int = 300
    symbol: str = PRIMARY

    def __post_init__(self) -> None:
        timeframe_ms(self.timeframe)
        if self.length < 1:
            raise ValueError(f"WindowSpec.length must be >= 1 (got {self.length} for {self.timeframe})")

    def resolve(self, primary: str) -> tuple[str, str]:
        """The (symbol, timeframe) key of this window for a given primary symbol."""
        return (self.symbol or primary, self.timeframe)


@dataclass(frozen=True)
class InputSpec:
    """Configuration of ``BaseDataInput`` assembly, validation and encoding.

    - ``windows``: required windows; the first one is the *base* window (labels and offsets use its bars).
    - ``min_bars``: a window with fewer bars makes the input not ready (design: 100).
    - ``completeness_threshold``: minimum completeness score for inference (design: 0.8).
    - ``pivot_params``: the pivots of the context; they are computed once on each window's whole series and filtered
      by confirmation at t (``features.assemble``), so no warm-up length is needed (spec A.5 sliding-window warning).
    - ``bounds_level``: pivot level of the PivotBounds used to normalise prices in the encoding (spec A.6).
    - ``context_levels``: levels whose last confirmed H/L go into the encoding's pivot-context vector.
    - ``order_flow_windows_ms``: trailing windows of the trade-based microstructure fields; () turns them off.
    - ``order_book``: length of the ``BaseDataInput.order_book`` vector the encoding feeds the model (0 = off, the
      default; ``features.cob.ORDER_BOOK_SIZE`` = 207 for the default ``CobConfig``). When on, the encoded context
      ends with those values and a presence flag (``features.encoding``); an input without depth encodes as zeros
      with flag 0, and is refused only with ``require_order_book`` (completeness "order_book: absent").
    """

    windows: tuple[WindowSpec, ...]
    min_bars: int = 100
    completeness_threshold: float = 0.8
    pivot_params: PivotParams = field(default_factory=PivotParams)
    bounds_level: int = 2
    context_levels: int = 5
    require_order_book: bool = False
    order_flow_windows_ms: tuple[int, ...] = DEFAULT_WINDOWS_MS
    order_book: int = 0

    def __post_init__(self) -> None:
        if not self.windows:
            raise ValueError("InputSpec.windows is empty; name at least one (symbol, timeframe, length) window")
        keys = [(w.symbol, w.timeframe) for w in self.windows]
        if len(set(keys)) != len(keys):
            raise ValueError(f"InputSpec.windows has duplicate (symbol, timeframe) entries: {keys}")
        if not 0.0 <= self.completeness_threshold <= 1.0:
            raise ValueError(f"completeness_threshold must be in [0, 1] (got {self.completeness_threshold})")
        if self.min_bars < 1:
            raise ValueError(f"min_bars must be >= 1 (got {self.min_bars})")
        if not 1 <= self.bounds_level <= self.pivot_params.levels:
            raise ValueError(f"bounds_level {self.bounds_level} outside pivot levels 1..{self.pivot_params.levels}")
        if any(w < 1000 for w in self.order_flow_windows_ms):
            raise ValueError(f"order_flow_windows_ms must be >= 1000 ms each (got {self.order_flow_windows_ms})")
        if self.order_book < 0:
            raise ValueError(f"InputSpec.order_book must be 0 (off) or the order-book vector length (got {self.order_book})")
        if not 1 <= self.context_levels <= self.pivot_params.levels:
            raise ValueError(f"context_levels {self.context_levels} outside pivot levels 1..{self.pivot_params.levels}")

    @property
    def base(self) -> WindowSpec:
        return self.windows[0]

    @property
    def window_len(self) -> int:
        """Time axis of the encoded tensor: the longest window (shorter ones are left-padded)."""
        return max(w.length for w in self.windows)

    def keys(self, primary: str) -> list[tuple[str, str]]:
        """(symbol, timeframe) of every window, in spec order, for a given primary symbol."""
        return [w.resolve(primary) for w in self.windows]

    def with_threshold(self, threshold: float) -> InputSpec:
        return replace(self, completeness_threshold=threshold)


def _windows(
    timeframes: str, length: int = 300, reference: str | None = None, ref_tf: str | None = None
) -> tuple[WindowSpec, ...]:
    out = [WindowSpec(tf, length) for tf in timeframes.split(",")]
    if reference and ref_tf:
        out.append(WindowSpec(ref_tf, length, reference))
    return tuple(out)


PRESETS: dict[str, InputSpec] = {
    # The design document's set (also "default"); needs 1s data for both symbols (not in the shared data).
    "design": InputSpec(_windows("1s,1m,1h,1d", reference="BTC/USDT", ref_tf="1s")),
    # Binance 1m years + 1h 2018-2026 in the shared data; 1d must be ingested or aggregated upstream.
    "minute": InputSpec(_windows("1m,1h,1d", reference="BTC/USDT", ref_tf="1m")),
    # Swing trading on hourly data (coinbase 4h/1d, binance 1h).
    "swing": InputSpec(_windows("1h,4h,1d")),
    # Single timeframe, the smallest useful input.
    "single-1m": InputSpec(_windows("1m")),
    "single-1h": InputSpec(_windows("1h")),
}
PRESETS["default"] = PRESETS["design"]


def preset(name: str) -> InputSpec:
    """A named preset; the error lists the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown input preset {name!r}; use one of: {', '.join(PRESETS)}") from None
