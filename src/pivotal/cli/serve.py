"""``pivotal serve``: the HTTP API and WebSocket push (``pivotal.api``) on 127.0.0.1 by default."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from pivotal.cli.common import DataDirOption, StoreOption, console, fail, settings_from


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; a non-loopback one needs PIVOTAL_API_TOKEN set."),
    port: int = typer.Option(8765, "--port", help="Port to listen on."),
    cors_origin: list[str] = typer.Option(
        [], "--cors-origin", help="A browser origin allowed to call the API (repeatable); none by default."
    ),
    rate_limit: int = typer.Option(60, "--rate-limit", min=1, help="State-changing requests per minute per client."),
    run_config: Path | None = typer.Option(
        None, "--run", help="Start this run configuration (pivotal run's TOML; replay or backtest) as the server starts."
    ),
    speed: float | None = typer.Option(
        None, "--speed", help="With --run: replay pace instead of the file's (0 = fastest; 3600 = an hourly bar a second)."
    ),
    data_dir: Path | None = DataDirOption,
    store: str | None = StoreOption,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json) and the WebSocket /ws. State-changing requests need the bearer
    token from PIVOTAL_API_TOKEN, or the one generated and printed once at start."""
    from pivotal.api.security import RateLimiter, Token, check_bind

    settings = settings_from(data_dir, store)
    from_env = Token.from_env()
    check_bind(host, from_env)  # UserInputError: one line, before anything listens
    token = from_env or Token.generate()

    import uvicorn

    from pivotal.api.app import create_app

    app = create_app(settings, token, RateLimiter(rate_limit, 60.0), cors_origins=cors_origin)
    if run_config is not None:  # bad configuration: one line, before anything listens
        _start_run(app, run_config, speed)
    console.print(f"pivotal API on http://{host}:{port} (schema: /openapi.json, push: ws://{host}:{port}/ws)")
    base = f"http://{host}:{port}"
    if token.generated:  # shown once, here; never logged
        console.print(f"token for state-changing requests (shown once): {token.reveal()}", markup=False, highlight=False)
        # The fragment never reaches the server; the pages keep it in the tab's sessionStorage and clear the address bar.
        console.print(f"dashboard: {base}/#token={token.reveal()}", markup=False, highlight=False)
        console.print(f"annotation tool: {base}/annotate#token={token.reveal()}", markup=False, highlight=False)
    else:
        console.print("token for state-changing requests: PIVOTAL_API_TOKEN (paste it in the pages' token field)")
        console.print(f"dashboard: {base}/", markup=False, highlight=False)
        console.print(f"annotation tool: {base}/annotate", markup=False, highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _start_run(app: Any, path: Path, speed: float | None = None) -> None:
    """``--run``: the run configuration's node, started in the server (``api.runtime_routes``); it plays whether or
    not a browser is open, and ``GET /api/runtime/status`` follows it."""
    from pivotal.api.runtime_routes import API_MODES
    from pivotal.core.errors import PivotalError
    from pivotal.runtime.config import load_run_config

    try:
        cfg = load_run_config(path, {"speed": speed} if speed is not None else None)
        if cfg.mode not in API_MODES:
            raise fail(f"{path}: mode: {cfg.mode!r} cannot run in the server yet; use one of {', '.join(API_MODES)}")
        app.state.runtime.start(cfg)
    except PivotalError as exc:
        raise fail(str(exc)) from None
    console.print(f"started {cfg.mode} of {cfg.strategy} from {path} (status: GET /api/runtime/status)", highlight=False)
