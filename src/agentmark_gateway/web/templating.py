"""Jinja2 for the dashboard: one environment, a few filters, one ``render``.

Autoescaping is on for every template; nothing marks user text as safe.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from agentmark_gateway import __version__
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.permissions.catalog import BY_NAME, ROLES, groups
from agentmark_gateway.web import csrf, figures
from agentmark_gateway.web.areas import AREAS

TEMPLATES_DIR = Path(__file__).parent / "templates"

# Every dashboard response is per user and may carry a one-time value: never cached.
NO_STORE = "no-store"


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


MONTH = 86400 * 30
YEAR = 86400 * 365
# (seconds per unit, unit, first count that moves on to the next unit)
UNITS = ((60, "minute", 60), (3600, "hour", 24), (86400, "day", 45))


def _amount(seconds: int) -> str:
    # Round first, then pick the unit: 3599 s reads "1 hour", not "60 minutes".
    for size, unit, up_to in UNITS:
        count = max(1, round(seconds / size))
        if count < up_to:
            return _plural(count, unit)
    if seconds < YEAR:
        return _plural(max(1, round(seconds / MONTH)), "month")
    return _plural(max(1, round(seconds / YEAR)), "year")


def relative(moment: datetime | None, *, never: str = "Never") -> str:
    """'just now', '5 minutes ago', 'in 3 days': what a list column needs at a glance."""
    if moment is None:
        return never
    seconds = int((moment - utcnow()).total_seconds())
    future, seconds = seconds > 0, abs(seconds)
    if seconds < 45:
        return "just now" if not future else "in a few seconds"
    amount = _amount(seconds)
    return f"in {amount}" if future else f"{amount} ago"


def full_time(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%b %-d, %Y %H:%M} UTC"


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat()


def is_past(moment: datetime | None) -> bool:
    return moment is not None and moment <= utcnow()


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(relative=relative, full_time=full_time, iso=iso)
    env.filters.update(
        duration=figures.duration,
        cost=figures.cost,
        count=figures.count,
        messages=figures.messages,
        readable=figures.readable,
        value_text=figures.value_text,
    )
    env.globals.update(
        version=__version__,
        roles=ROLES,
        permission_groups=groups(),
        permissions_by_name=BY_NAME,
        is_past=is_past,
        app_areas=AREAS,
    )
    return env


ENV = _environment()


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page, or a fragment for htmx; ``frame`` picks between the two for dialogs."""
    values: dict[str, Any] = {
        "request": request,
        "csrf_token": csrf.token_for(request),
        "htmx": is_htmx(request),
        "frame": "frame_modal.html" if is_htmx(request) else "frame_page.html",
    }
    values.update(context or {})
    html = ENV.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers["Cache-Control"] = NO_STORE
    return response
