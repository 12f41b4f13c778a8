"""`pivotal configs list | show ID | export ID --out FILE`: trained configurations in the store.

Argument parsing and printing only; the use case is ``pivotal.services.configs``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, settings_from

if TYPE_CHECKING:
    from pivotal.optimize.configs import TrainedConfiguration
# the services load pandas/pyarrow: imported by the commands, not at --help time

app = typer.Typer(help="Trained configurations: list, show, export a live template.", no_args_is_help=True)


@app.command("list")
def list_configs(
    job_id: str | None = typer.Option(None, "--job-id", help="Only configurations of this job."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Every stored configuration with its lifecycle stage and headline numbers."""
    from pivotal.services.configs import list_configurations

    configs: list[TrainedConfiguration] = list_configurations(settings_from(data_dir, store), job_id=job_id)
    if not configs:
        console.print("No trained configurations yet; create some with `pivotal optimize`.")
        return
    table = Table(title="Trained configurations")
    table.add_column("stage", no_wrap=True, min_width=10)
    for name in ("trades", "OOS net %", "DSR", "PBO", "p-value"):
        table.add_column(name)
    table.add_column("id", no_wrap=True, min_width=max(len(c.id) for c in configs))
    for c in configs:
        s, o = c.significance, c.oos_metrics
        table.add_row(
            c.lifecycle_stage.value, str(c.sample_size), _num(o.get("net_profit_pct"), 2), _num(s.get("dsr")),
            _num(s.get("pbo")), _num(s.get("p_value")), c.id,
        )  # fmt: skip
    console.print(table)


def _num(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


@app.command("show")
def show(config_id: str, data_dir: Path | None = DataDirOption, store: str | None = StoreOption) -> None:
    """One configuration in full (JSON)."""
    from pivotal.core.errors import PivotalError
    from pivotal.services.configs import configuration_template

    try:
        template = configuration_template(settings_from(data_dir, store), config_id)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    console.print_json(json.dumps(template))


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
