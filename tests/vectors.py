"""Hand-worked vectors HV1-HV3 of spec A.9 (/work/shared/specs/algorithms.md), shared by every test that uses them.

Pivot triples are (bar index, price, confirming bar index). Expected levels are written out by hand, never computed.
"""

from __future__ import annotations

import numpy as np

from pivotal.structure.types import PivotArray

Triples = list[tuple[int, float, int]]

# --- HV1: k=1, m=1, tie=first, low = high - 4 ------------------------------------------------------------------------
HV1_HIGH = [
    10,
    12,
    14,
    13,
    15,
    17,
    16,
    14,
    15,
    13,
    11,
    12,
    10,
    9,
    11,
    13,
    12,
    14,
    16,
    18,
    17,
    19,
    18,
    16,
    17,
    15,
    14,
    16,
    15,
    13,
    14,
]
HV1_EXPECTED: dict[tuple[int, str], Triples] = {
    (1, "H"): [
        (2, 14, 3),
        (5, 17, 6),
        (8, 15, 9),
        (11, 12, 12),
        (15, 13, 16),
        (19, 18, 20),
        (21, 19, 22),
        (24, 17, 25),
        (27, 16, 28),
    ],
    (1, "L"): [
        (3, 9, 4),
        (7, 10, 8),
        (10, 7, 11),
        (13, 5, 14),
        (16, 8, 17),
        (20, 13, 21),
        (23, 12, 24),
        (26, 10, 27),
        (29, 9, 30),
    ],
    (2, "H"): [(5, 17, 9), (21, 19, 25)],
    (2, "L"): [(13, 5, 17)],
}

# --- HV2: k=1, m=1, OHLC with equal highs, inside bars and an outside bar (12) -----------------------------------------
HV2_OPEN = [17, 19, 21, 23, 22, 20, 19, 21, 19, 16, 17, 19, 14, 21, 17, 21, 23, 22, 23, 20, 18, 16, 19, 15, 14]
HV2_HIGH = [20, 22, 24, 24, 23, 21, 22, 21, 19, 18, 20, 19, 23, 21, 22, 24, 24, 25, 23, 21, 20, 21, 19, 18, 20]
HV2_LOW = [16, 18, 20, 21, 19, 17, 19, 18, 15, 14, 16, 17, 13, 15, 17, 19, 20, 21, 19, 17, 15, 16, 14, 12, 14]
HV2_CLOSE = [19, 21, 23, 22, 20, 18, 21, 19, 16, 17, 19, 18, 22, 16, 21, 23, 22, 24, 20, 18, 16, 20, 15, 13, 19]
HV2_L1H_FIRST: Triples = [(2, 24, 3), (6, 22, 7), (10, 20, 11), (12, 23, 13), (15, 24, 16), (17, 25, 18), (21, 21, 22)]
HV2_L1L: Triples = [(5, 17, 6), (9, 14, 10), (12, 13, 13), (20, 15, 21), (23, 12, 24)]

# --- HV3: k=1, m=1, zigzag reaching L3, low = high - 4 ---------------------------------------------------------------
HV3_HIGH = [8, 10, 8, 12, 10, 11, 9, 14, 11, 13, 7, 18, 12, 15, 10, 17, 13, 16, 11, 13, 12, 15, 12, 14, 13]
HV3_EXPECTED: dict[tuple[int, str], Triples] = {
    (1, "H"): [(i, HV3_HIGH[i], i + 1) for i in range(1, 24, 2)],
    (1, "L"): [(i, HV3_HIGH[i] - 4, i + 1) for i in range(2, 23, 2)],
    (2, "H"): [(3, 12, 6), (7, 14, 10), (11, 18, 14), (15, 17, 18), (21, 15, 24)],
    (2, "L"): [(6, 5, 9), (10, 3, 13), (14, 6, 17), (18, 7, 21)],
    (3, "H"): [(11, 18, 18)],
    (3, "L"): [(10, 3, 17)],
}


def pivot_array(rows: Triples) -> PivotArray:
    """A ``PivotArray`` from hand-written (index, price, confirmed_at) triples (empty list allowed)."""
    a = np.array(rows, dtype=float).reshape(-1, 3)
    return PivotArray(a[:, 0].astype(np.int64), a[:, 1], a[:, 2].astype(np.int64))
