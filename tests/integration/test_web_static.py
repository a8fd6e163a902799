"""The vendored htmx is the pinned file; the dashboard needs no build step."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

import agentmark_gateway.web as web

STATIC = Path(web.__file__).parent / "static"


def test_vendored_htmx_matches_the_recorded_version_and_digest():
    notes = (STATIC / "VENDORED.md").read_text()
    row = re.search(r"`htmx\.min\.js` \|[^|]+\| ([\d.]+) \| `([0-9a-f]{64})`", notes)
    assert row, "VENDORED.md records no htmx version and digest"
    version, digest = row.groups()
    assert hashlib.sha256((STATIC / "htmx.min.js").read_bytes()).hexdigest() == digest
    assert version == "2.0.4"


@pytest.mark.parametrize("name", ["swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css"])
def test_vendored_swagger_ui_matches_the_recorded_version_and_digest(name):
    notes = (STATIC / "VENDORED.md").read_text()
    row = re.search(rf"`{re.escape(name)}` \|[^|]+\| ([\d.]+) \| `([0-9a-f]{{64}})`", notes)
    assert row, f"VENDORED.md records no version and digest for {name}"
    version, digest = row.groups()
    assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest
    assert version == "5.36.0"
    assert "Apache License" in (STATIC / "swagger-ui" / "LICENSE").read_text()


@pytest.mark.parametrize("name", ["uplot/uPlot.iife.min.js", "uplot/uPlot.min.css"])
def test_vendored_uplot_matches_the_recorded_version_and_digest(name):
    notes = (STATIC / "VENDORED.md").read_text()
    row = re.search(rf"`{re.escape(name)}` \|[^|]+\| ([\d.]+) \| `([0-9a-f]{{64}})`", notes)
    assert row, f"VENDORED.md records no version and digest for {name}"
    version, digest = row.groups()
    assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == digest
    assert version == "1.6.32"
    assert "MIT License" in (STATIC / "uplot" / "LICENSE").read_text()


def test_static_files_are_served_with_nosniff(client):
    for name in ("htmx.min.js", "app.js", "app.css", "favicon.svg"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (
        client.get("/static/htmx.min.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
