"""Published templates: built ASTs stored per app under their path.

Every query names the caller's app, so another app's template is simply not
found. Every change is announced to the other gateway processes (a
``key_changes`` row of kind "templates", in the same transaction), which drop
their cached answers for the app (templates/cache.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import load_only

from agentmark_gateway.api_keys.changes import TEMPLATES_CHANGED, KeyChange
from agentmark_gateway.config.service import CONFIG_PATH
from agentmark_gateway.db.base import utcnow
from agentmark_gateway.errors import NotFound
from agentmark_gateway.templates.frontmatter import prompt_name
from agentmark_gateway.templates.models import Template
from agentmark_gateway.templates.stamp import stamp


def _not_found(path: str) -> NotFound:
    return NotFound(f"Template '{path}' not found", code="template_not_found")


async def get_template(session: AsyncSession, *, app_id: str, path: str) -> Template:
    template = await session.scalar(
        select(Template).where(Template.app_id == app_id, Template.path == path)
    )
    if template is None:
        raise _not_found(path)
    return template


async def put_template(
    session: AsyncSession,
    *,
    app_id: str,
    path: str,
    content: dict[str, Any],
    commit_sha: str | None = None,
) -> tuple[Template, bool]:
    """Create or replace the template at ``path``, stamped with ``commit_sha`` when
    given (templates/stamp.py); True when it was created."""
    if commit_sha is not None:
        stamp(content, config=path == CONFIG_PATH, commit_sha=commit_sha)
    name = prompt_name(content)
    template = await session.scalar(
        select(Template).where(Template.app_id == app_id, Template.path == path)
    )
    if template is None:
        template = Template(app_id=app_id, path=path, content=content, prompt_name=name)
        session.add(template)
        _announce(session, app_id)
        try:
            await session.commit()
            return template, True
        except IntegrityError:
            # Another publish of the same path won the race: replace its version.
            await session.rollback()
            template = await get_template(session, app_id=app_id, path=path)
    template.content = content
    template.prompt_name = name
    template.updated_at = utcnow()
    _announce(session, app_id)
    await session.commit()
    return template, False


async def delete_template(session: AsyncSession, *, app_id: str, path: str) -> None:
    result = await session.execute(
        delete(Template)
        .where(Template.app_id == app_id, Template.path == path)
        .returning(Template.id)
    )
    if result.first() is None:
        await session.rollback()
        raise _not_found(path)
    _announce(session, app_id)
    await session.commit()


def _announce(session: AsyncSession, app_id: str) -> None:
    session.add(KeyChange(app_id=app_id, kind=TEMPLATES_CHANGED))


async def list_prompt_paths(
    session: AsyncSession, *, app_id: str, name: str | None = None
) -> list[str]:
    """Paths of the app's templates, sorted; only those whose frontmatter ``name`` matches.

    The project configuration is stored with the templates but is no prompt: the
    clients load every listed path as one.
    """
    query = (
        select(Template.path)
        .where(Template.app_id == app_id, Template.path != CONFIG_PATH)
        .order_by(Template.path)
    )
    if name is not None:
        query = query.where(Template.prompt_name == name)
    return list(await session.scalars(query))


async def list_templates(session: AsyncSession, *, app_id: str, limit: int) -> list[Template]:
    """The app's published prompts by path, without their content (the dashboard's list);
    the project configuration is left out, as ``list_prompt_paths`` leaves it."""
    query = (
        select(Template)
        .options(load_only(Template.path, Template.prompt_name, Template.updated_at))
        .where(Template.app_id == app_id, Template.path != CONFIG_PATH)
        .order_by(Template.path)
        .limit(limit)
    )
    return list(await session.scalars(query))
