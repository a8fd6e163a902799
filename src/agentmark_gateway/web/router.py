"""The dashboard: server-rendered pages on the same services as the API.

``install(app)`` adds the pages (kept out of the OpenAPI document) and the
static files: hand-written CSS and JS, and htmx and Swagger UI (``/docs``) vendored
in ``static/``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from agentmark_gateway.web import (
    api_docs,
    app_pages,
    audit_pages,
    auth_pages,
    dataset_pages,
    experiment_pages,
    key_detail_pages,
    key_pages,
    member_pages,
    metric_pages,
    score_pages,
    session_pages,
    template_pages,
    trace_pages,
)
from agentmark_gateway.web.route import SecureStatic

STATIC_DIR = Path(__file__).parent / "static"

ROUTERS = (
    auth_pages.router,
    app_pages.router,
    key_pages.router,
    key_detail_pages.router,  # after key_pages: its /new and /rows come first
    member_pages.router,
    member_pages.old_router,
    audit_pages.router,
    trace_pages.router,
    session_pages.router,
    experiment_pages.router,
    template_pages.router,
    dataset_pages.router,
    dataset_pages.trace_router,
    score_pages.router,
    metric_pages.router,
    api_docs.router,
)

__all__ = ["install"]


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    app.mount("/static", SecureStatic(StaticFiles(directory=STATIC_DIR)), name="static")
