"""``SqlStore``, ``Batch`` and ``SeriesKey`` each name one thing (issue #8: each meant two)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

SRC = Path(__file__).resolve().parents[2] / "src" / "pivotal"
EXPECTED = {
    "SqlStore": "data/state/migrations.py",  # anything that runs portable SQL; the market-store base is SqlMarketStore
    "Batch": "models/protocol.py",  # a training batch of tensors; a parsed import file is ImportBatch
    "SeriesKey": "data/store.py",  # (exchange, symbol, timeframe); the as-of (symbol, timeframe) key is WindowKey
}


def _definitions(name: str) -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            defined = (
                (isinstance(node, ast.ClassDef) and node.name == name)
                or (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets))
                or (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == name)
            )  # fmt: skip
            if defined:
                found.append(path.relative_to(SRC).as_posix())
    return found


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_defined_once(name: str) -> None:
    assert _definitions(name) == [EXPECTED[name]]
