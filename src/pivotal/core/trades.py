"""Trade list and equity curve containers with CSV/JSON export.

A trade carries every time it depends on: the signal bar (the close at which it was decided), the entry bar/time/fill,
and the exit bar/time/reason/fill. Bars are positions in the backtested series; times are bar open times (epoch ms).

Exit reasons: a trade, its files and tables carry the ``ExitReason`` *name* (``"SL_GAP"``); numba kernels carry the
int code (``EXIT_SL_GAP``). :func:`exit_reason_name` / :func:`exit_reason_code` are the one mapping between them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from pivotal.core.vocabulary import EXIT_REASONS, ExitReason


def exit_reason_name(code: int) -> str:
    """The file/table name of a kernel exit code (``EXIT_SL`` -> ``"SL"``)."""
    return EXIT_REASONS[int(code)]


def exit_reason_code(name: str) -> int:
    """The kernel code of an exit reason name; ValueError naming the valid ones otherwise."""
    return int(ExitReason.parse(name))


@dataclass(frozen=True)
class Trade:
    signal_bar: int
    direction: int  # +1 long, -1 short
    level: float  # the price level that triggered the signal (NaN when the strategy has none)
    entry_bar: int
    entry_time: int
    entry_fill: float
    stop: float  # NaN when the order had no stop
    target: float  # NaN when the order had no target
    exit_bar: int
    exit_time: int
    exit_reason: str  # an ExitReason name: SL_GAP, TP_GAP, SL, TP, TIME, EOD, SIGNAL, BREAKER
    exit_fill: float
    net_return: float  # after fees and slippage, as a fraction of the entry fill

    @property
    def side(self) -> str:
        return "LONG" if self.direction > 0 else "SHORT"


TRADE_COLUMNS = tuple(f.name for f in fields(Trade))


@dataclass(frozen=True)
class TradeList:
    trades: tuple[Trade, ...] = ()

    def __len__(self) -> int:
        return len(self.trades)

    def __iter__(self):
        return iter(self.trades)

    def __getitem__(self, i: int) -> Trade:
        return self.trades[i]

    @property
    def returns(self) -> np.ndarray:
        return np.array([t.net_return for t in self.trades], dtype=np.float64)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame([asdict(t) for t in self.trades], columns=list(TRADE_COLUMNS))
        frame.insert(2, "side", ["LONG" if d > 0 else "SHORT" for d in frame["direction"]])
        return frame

    def to_csv(self, path: Path) -> None:
        self.to_frame().to_csv(path, index=False)

    def to_json(self, path: Path) -> None:
        rows = [{**asdict(t), "side": t.side} for t in self.trades]
        Path(path).write_text(json.dumps(rows, indent=1, default=_json_default, allow_nan=True))

    def write(self, path: Path) -> None:
        """Export by file extension: ``.csv`` or ``.json``."""
        suffix = Path(path).suffix.lower()
        if suffix == ".csv":
            self.to_csv(path)
        elif suffix == ".json":
            self.to_json(path)
        else:
            raise ValueError(f"{path}: unsupported trade export format {suffix!r}; use .csv or .json")


def _json_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


@dataclass(frozen=True)
class EquityCurve:
    """Mark-to-market equity at each bar close (1.0 = starting capital) and whether a position was held."""

    ts: np.ndarray
    equity: np.ndarray
    in_position: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"ts": self.ts, "equity": self.equity, "in_position": self.in_position})
