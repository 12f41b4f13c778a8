"""The browser UI's files as ``pivotal serve`` serves them (hermetic; the browser tests drive them in Chromium): the
dashboard at ``/``, the vendored chart library with its licence, nothing loaded from another host."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from pivotal.api.web import STATIC

VENDOR = "/static/vendor/lightweight-charts.standalone.production.js"


def test_the_dashboard_page_and_its_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'<script src="{VENDOR}"></script>' in page.text
    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text):
        assert client.get(path).status_code == 200, path
    lib = client.get(VENDOR)
    assert lib.text.startswith("/*!\n * @license\n * TradingView Lightweight Charts™ v5.3.0")
    assert "Apache License" in client.get("/static/vendor/LICENSE-lightweight-charts.txt").text
    assert "/" not in client.get("/openapi.json").json()["paths"]  # a page, not an API route


def test_nothing_is_loaded_from_another_host() -> None:
    """Works offline: our own files name no http(s) URL to load (the vendored library only names its licence's)."""
    for path in [*STATIC.glob("*.html"), *STATIC.glob("js/*.js"), *STATIC.glob("css/*.css")]:
        assert not re.search(r"(?:src|href)=\"https?:|url\(\s*['\"]?https?:|fetch\(\s*['\"]https?:|//cdn", path.read_text()), path


def test_an_unknown_static_file_is_a_404(client: TestClient) -> None:
    assert client.get("/static/js/nope.js").status_code == 404
