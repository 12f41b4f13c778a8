"""The ``pivotal`` console script: one Typer app with a sub-app per bounded context."""

from __future__ import annotations

import typer

from pivotal.cli import (
    annotations as annotations_cli,
)  # fmt: skip
from pivotal.cli import (
    backtest,
    cob,
    configs,
    data,
    models,
    optimize,
    parity,
    pivots,
    predictions,
    run,
    serve,
    testexchange,
    train,
)
from pivotal.cli.common import OneLineErrors

app = typer.Typer(
    name="pivotal",
    cls=OneLineErrors,  # a PivotalError (or bad setting) anywhere below ends as one line, never a traceback
    help="Crypto market-structure research: data lake, Williams pivots, strategy research, models.",
    no_args_is_help=True,
    add_completion=False,
    # Never print local variables in a traceback: they hold settings (a DSN password) and API keys.
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"pivotal {version('pivotal')}")
        raise typer.Exit()


@app.callback()
def _root(
    _show_version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the installed version and exit."
    ),
) -> None:
    """Crypto market-structure research: data lake, Williams pivots, strategy research, models."""


app.add_typer(data.app, name="data")
app.add_typer(pivots.app, name="pivots")
app.add_typer(configs.app, name="configs")
app.add_typer(models.app, name="models")
app.add_typer(testexchange.app, name="testexchange")
app.add_typer(cob.app, name="cob")
app.add_typer(predictions.app, name="predictions")
app.add_typer(annotations_cli.app, name="annotations")
app.command("backtest")(backtest.backtest)
app.command("run")(run.run)
app.command("parity")(parity.parity)
app.command("optimize")(optimize.optimize)
app.command("train")(train.train)
app.command("predict")(train.predict)
app.command("serve")(serve.serve)


if __name__ == "__main__":
    app()
