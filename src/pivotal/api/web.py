"""The browser UI of ``pivotal serve``: static files (HTML, CSS, JS and the vendored lightweight-charts release, see
web/vendor.sh) under ``/static``, the dashboard at ``/`` and the annotation tool at ``/annotate``. Nothing is fetched
from the internet: the pages work offline. They only call the API and ``/ws``; they hold no logic of their own beyond
drawing and editing."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
DASHBOARD = STATIC / "dashboard.html"
ANNOTATE = STATIC / "annotate.html"
NO_CACHE = {"Cache-Control": "no-cache"}


def mount_web(app: FastAPI) -> None:
    """Serve ``static/`` at ``/static``, the dashboard at ``/`` and the annotation tool at ``/annotate`` (pages are not
    in the OpenAPI schema: not an API)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(DASHBOARD, media_type="text/html", headers=NO_CACHE)

    @app.get("/annotate", include_in_schema=False)
    def annotate() -> FileResponse:
        """The annotation tool: mark LONG/SHORT trades on synchronized charts (saved through /api/annotations)."""
        return FileResponse(ANNOTATE, media_type="text/html", headers=NO_CACHE)
