"""The project configuration (``agentmark.json``) of an app, and the score configs in it.

The gateway has no git deploys to sync the file from: it is published like a
template, at the path ``agentmark.json`` (``agentmark-gateway templates push``
sends it when the folder has one, or ``PUT /v1/templates?path=agentmark.json``),
and stored per app with the templates. Its commit is the one it was published
with (``templates push`` sends the build's; templates/stamp.py keeps it in the
stored document): null without one (and ``""`` in score configs, whose schema
wants a string).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.errors import NotFound
from agentmark_gateway.templates.models import Template
from agentmark_gateway.templates.stamp import config_commit

CONFIG_PATH = "agentmark.json"
NO_COMMIT = ""


async def get_config(session: AsyncSession, *, app_id: str) -> tuple[dict[str, Any], str | None]:
    """The app's published ``agentmark.json`` and the commit it was published with (or
    None); 404 ``config_not_found`` when there is none."""
    content = await session.scalar(
        select(Template.content).where(Template.app_id == app_id, Template.path == CONFIG_PATH)
    )
    if content is None:
        raise NotFound(
            f"No project configuration: publish {CONFIG_PATH} with the templates "
            "(agentmark-gateway templates push)",
            code="config_not_found",
        )
    return config_commit(content)


async def score_configs(session: AsyncSession, *, app_id: str) -> list[dict[str, Any]]:
    """The ``scores`` map of the configuration, projected and sorted by name; [] without one."""
    try:
        config, commit_sha = await get_config(session, app_id=app_id)
    except NotFound:
        return []
    scores = config.get("scores")
    if not isinstance(scores, dict):
        return []
    configs = [
        projected
        for name, entry in scores.items()
        if (projected := score_config(name, entry, commit_sha=commit_sha)) is not None
    ]
    return sorted(configs, key=lambda config: config["name"])


async def get_score_config(session: AsyncSession, *, app_id: str, name: str) -> dict[str, Any]:
    for config in await score_configs(session, app_id=app_id):
        if config["name"] == name:
            return config
    raise NotFound(f"Score config '{name}' not found", code="score_config_not_found")


def score_config(name: str, entry: Any, *, commit_sha: str | None) -> dict[str, Any] | None:
    """One ``scores`` entry (``{type, description?, min?, max?, categories?}``) as the API
    shows it; None for an entry of an unknown type or without a valid category, which
    is left out (as AgentMark's own servers do) rather than failing the whole list."""
    if not name or not isinstance(entry, dict):
        return None
    kind = entry.get("type")
    config: dict[str, Any] = {"id": f"{CONFIG_PATH}:{name}", "name": name}
    config["commit_sha"] = commit_sha or NO_COMMIT
    config["data_type"] = kind
    if isinstance(entry.get("description"), str):
        config["description"] = entry["description"]
    if kind == "boolean":
        return config
    if kind == "numeric":
        for bound in ("min", "max"):
            if _finite(entry.get(bound)):
                config[bound] = entry[bound]
        return config
    if kind == "categorical":
        raw = entry.get("categories")
        categories = [
            {"label": item["label"], "value": item["value"]}
            for item in (raw if isinstance(raw, list) else [])
            if isinstance(item, dict)
            and isinstance(item.get("label"), str)
            and item["label"]
            and _finite(item.get("value"))
        ]
        if not categories:
            return None
        config["categories"] = categories
        return config
    return None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
