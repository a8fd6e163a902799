"""``/docs``: Swagger UI served from the package, under the dashboard's headers.

The files are vendored and pinned (``static/VENDORED.md``), so the page loads
nothing from another origin, and the route class gives it the dashboard's
Content-Security-Policy, which allows scripts and styles from this origin only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from agentmark_gateway.web.route import WebRoute
from agentmark_gateway.web.templating import ENV

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get("/docs")
async def api_docs(request: Request) -> HTMLResponse:
    page = ENV.get_template("api_docs.html").render(
        title=request.app.title, openapi_url=request.app.openapi_url
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})
