"""`pivotal configs list | show ID | export ID --out FILE`: trained configurations in the store."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, settings_from
from pivotal.optimize.configs import ConfigurationRepository, TrainedConfiguration, export_template

app = typer.Typer(help="Trained configurations: list, show, export a live template.", no_args_is_help=True)


def _repo_get(config_id: str, data_dir: Path | None, store: str | None) -> TrainedConfiguration:
    from pivotal.data.backends import open_store  # pivotal.data loads pandas/pyarrow: not at --help time

    market_store = open_store(settings_from(data_dir, store))
    try:
        config = ConfigurationRepository(market_store).get(config_id)
    finally:
        market_store.close()
    if config is None:
        raise fail(f"no trained configuration {config_id!r}; see `pivotal configs list`")
    return config


@app.command("list")
def list_configs(
    job_id: str | None = typer.Option(None, "--job-id", help="Only configurations of this job."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Every stored configuration with its lifecycle stage and headline numbers."""
    from pivotal.data.backends import open_store

    market_store = open_store(settings_from(data_dir, store))
    try:
        configs = ConfigurationRepository(market_store).list(job_id=job_id)
    finally:
        market_store.close()
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
    console.print_json(json.dumps(export_template(_repo_get(config_id, data_dir, store))))


@app.command("export")
def export(
    config_id: str,
    out: Path = typer.Option(..., "--out", help="Where to write the JSON template."),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Write the live-trading JSON template (parameters, metrics, significance, circuit breakers)."""
    template = export_template(_repo_get(config_id, data_dir, store))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(template, indent=2, allow_nan=False) + "\n")
    tmp.replace(out)  # atomic: never a half-written template
    console.print(f"wrote {out}")
