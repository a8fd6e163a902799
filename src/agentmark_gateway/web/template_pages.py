"""Templates: the app's published prompts, each with its frontmatter and its source
read back from the built tree (templates.service, templates.source)."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from agentmark_gateway.config.service import CONFIG_PATH
from agentmark_gateway.deps import DbSession
from agentmark_gateway.errors import NotFound
from agentmark_gateway.permissions.org_roles import Action
from agentmark_gateway.templates import service as templates
from agentmark_gateway.templates.source import frontmatter_text, source_text
from agentmark_gateway.web.context import CurrentApp, area_context
from agentmark_gateway.web.route import WebRoute
from agentmark_gateway.web.session import Viewer, allowed
from agentmark_gateway.web.templating import render

router = APIRouter(prefix="/apps/{app_id}/templates", route_class=WebRoute)

# A project publishes tens of prompts; past this the page says it shows the first ones.
MAX_LISTED = 1000


@router.get("")
async def list_page(
    request: Request, db: DbSession, app: CurrentApp, viewer: Viewer = allowed(Action.APPS_READ)
) -> Response:
    found = await templates.list_templates(db, app_id=app.id, limit=MAX_LISTED + 1)
    context = await area_context(request, db, viewer, app, "templates")
    context.update(templates=found[:MAX_LISTED], more=len(found) > MAX_LISTED)
    return render(request, "prompts/index.html", context)


@router.get("/{path:path}")
async def template_page(
    request: Request,
    db: DbSession,
    app: CurrentApp,
    path: Annotated[str, Path(max_length=1024)],
    viewer: Viewer = allowed(Action.APPS_READ),
) -> Response:
    if path == CONFIG_PATH:  # stored beside the prompts, but no prompt
        raise NotFound(f"Template '{path}' not found", code="template_not_found")
    template = await templates.get_template(db, app_id=app.id, path=path)
    content = template.content
    mdx = path.endswith(".mdx")
    context = await area_context(request, db, viewer, app, "templates", [(path, None)])
    context.update(
        template=template,
        frontmatter=frontmatter_text(content) if mdx else None,
        source=source_text(content) if mdx else json.dumps(content, indent=2, ensure_ascii=False),
    )
    return render(request, "prompts/template.html", context)
