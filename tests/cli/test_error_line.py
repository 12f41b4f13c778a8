"""An error is one line, however long, on a narrow terminal or through a pipe, and shows file text literally."""

from __future__ import annotations

import pytest
import typer

from pivotal.cli import common

pytestmark = pytest.mark.unit


def test_a_long_error_stays_on_one_line_at_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(common, "err_console", common.Console(stderr=True, width=80))
    message = "data/x.csv: row 17, field 'low': 101.5 is above high 100.0 [in the file]; fix: correct the row " * 2
    assert isinstance(common.fail(message.strip()), typer.Exit)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.strip() == "error: " + message.strip()
