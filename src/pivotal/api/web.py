"""The browser UI of ``pivotal serve``: static files (HTML, CSS, JS and the vendored lightweight-charts release, see
web/vendor.sh) under ``/static`` and the dashboard at ``/``. Nothing is fetched from the internet: the page works
offline. The page only reads the API and ``/ws``; it holds no logic of its own beyond drawing."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
DASHBOARD = STATIC / "dashboard.html"


def mount_web(app: FastAPI) -> None:
    """Serve ``static/`` at ``/static`` and the dashboard page at ``/`` (not in the OpenAPI schema: not an API)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(DASHBOARD, media_type="text/html", headers={"Cache-Control": "no-cache"})
