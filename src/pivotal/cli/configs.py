"""`pivotal configs list | show ID | export ID --out FILE`: trained configurations in the store.

Argument parsing and printing only; the use case is ``pivotal.services.configs``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, JsonOption, StoreOption, console, emit_json, fail, settings_from

if TYPE_CHECKING:
    from pivotal.optimize.configs import TrainedConfiguration
# the services load pandas/pyarrow: imported by the commands, not at --help time

app = typer.Typer(help="Trained configurations: list, show, export a live template.", no_args_is_help=True)


@app.command("list")
def list_configs(
    job_id: str | None = typer.Option(None, "--job-id", help="Only configurations of this job."),
    strategy: str | None = typer.Option(None, "--strategy", help="Only configurations of this strategy."),
    as_json: bool = JsonOption,
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Every stored configuration with its lifecycle stage and headline numbers."""
    from pivotal.services.configs import list_configurations

    configs: list[TrainedConfiguration] = list_configurations(settings_from(data_dir, store), job_id=job_id, strategy=strategy)
    if as_json:
        emit_json([_summary(c) for c in configs])
        return
    if not configs:
        console.print("No trained configurations yet; create some with `pivotal optimize`.")
        return
    # Narrow columns (fits 80 columns, also when piped); strategy and long id follow the table, one line each, unbroken.
    table = Table(title="Trained configurations")
    table.add_column("#", justify="right")
    table.add_column("market")
    table.add_column("stage")
    for name in ("trades", "OOS net %", "DSR", "PBO", "p-value"):
        table.add_column(name, justify="right")
    for n, c in enumerate(configs, 1):
        s, o = c.significance, c.oos_metrics
        table.add_row(
            str(n), f"{c.exchange} {c.pair} {c.timeframe}", c.lifecycle_stage.value, str(c.sample_size),
            _num(o.get("net_profit_pct"), 2), _num(s.get("dsr")), _num(s.get("pbo")), _num(s.get("p_value")),
        )  # fmt: skip
    console.print(table)
    console.print("strategy and id (for `pivotal configs show ID`):")
    for n, c in enumerate(configs, 1):
        console.print(f"{n:>3}  {c.strategy}  {c.id}", highlight=False, soft_wrap=True)


def _summary(c: TrainedConfiguration) -> dict[str, Any]:
    return {
        "id": c.id, "strategy": c.strategy, "exchange": c.exchange, "pair": c.pair, "timeframe": c.timeframe,
        "lifecycle_stage": c.lifecycle_stage.value, "sample_size": c.sample_size, "parameters": c.parameters,
        "is_metrics": c.is_metrics, "oos_metrics": c.oos_metrics, "significance": c.significance, "job_id": c.job_id,
    }  # fmt: skip


def _num(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


@app.command("show")
def show(
    config_id: str,
    as_json: bool = typer.Option(False, "--json", help="Accepted everywhere; `show` always prints JSON (one line when piped)."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """One configuration in full: its live-trading JSON template."""
    from pivotal.core.errors import PivotalError
    from pivotal.services.configs import configuration_template

    try:
        template = configuration_template(settings_from(data_dir, store), config_id)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    emit_json(template)


@app.command("export")
def export(
    config_id: str,
    out: Path = typer.Option(..., "--out", help="Where to write the JSON template."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Write the live-trading JSON template (parameters, metrics, significance, circuit breakers)."""
    from pivotal.core.errors import PivotalError
    from pivotal.services.configs import export_configuration

    try:
        written = export_configuration(settings_from(data_dir, store), config_id, out)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    console.print(f"wrote {written}")
