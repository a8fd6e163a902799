"""The permission catalog and role presets: the single source of truth.

The checks, the dashboard's checkboxes, the CLI, the OpenAPI document and
``docs/permissions.md`` all read these tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agentmark_gateway.errors import InvalidPermissions


@dataclass(frozen=True)
class Permission:
    name: str
    group: str
    label: str
    description: str


PERMISSIONS: tuple[Permission, ...] = (
    Permission("trace.ingest", "Traces", "Ingest traces", "Send spans (POST /v1/traces)."),
    Permission("trace.read", "Traces", "Read traces", "List and read traces."),
    Permission(
        "template.read",
        "Templates",
        "Read templates",
        "Fetch templates and dataset files through /v1/templates; list prompts.",
    ),
    Permission("template.write", "Templates", "Write templates", "Publish and delete templates."),
    Permission(
        "score.read", "Scores", "Read scores", "List and read scores, score names, aggregations."
    ),
    Permission("score.write", "Scores", "Write scores", "Create scores, one or a batch."),
    Permission("score.delete", "Scores", "Delete scores", "Delete a score."),
    Permission("span.read", "Spans", "Read spans", "List and read spans."),
    Permission("session.read", "Sessions", "Read sessions", "List sessions and their traces."),
    Permission("dataset.read", "Datasets", "Read datasets", "List datasets and read their rows."),
    Permission(
        "dataset.write", "Datasets", "Write datasets", "Create datasets, append and import rows."
    ),
    Permission(
        "metrics.read", "Metrics", "Read metrics", "Usage, cost, token and latency metrics."
    ),
    # Runs are recorded as spans and scores (trace.ingest, score.write): nothing to write.
    Permission(
        "experiment.read",
        "Experiments",
        "Read experiments",
        "List and read experiment runs, baselines.",
    ),
)

PERMISSION_NAMES: frozenset[str] = frozenset(p.name for p in PERMISSIONS)
BY_NAME: dict[str, Permission] = {p.name: p for p in PERMISSIONS}

# Names other AgentMark deployments use for the same grant; accepted on input only.
ALIASES: dict[str, str] = {"trace.write": "trace.ingest"}


def groups() -> list[tuple[str, list[Permission]]]:
    """Permissions grouped by resource, in catalog order (for the UI and docs)."""
    ordered: dict[str, list[Permission]] = {}
    for permission in PERMISSIONS:
        ordered.setdefault(permission.group, []).append(permission)
    return list(ordered.items())


@dataclass(frozen=True)
class Role:
    id: str
    label: str
    description: str
    # None means "every permission of this version", resolved at check time.
    permissions: tuple[str, ...] | None


CUSTOM = "custom"

ROLES: dict[str, Role] = {
    "sdk": Role(
        "sdk",
        "SDK",
        "CLI and SDK integrations",
        ("trace.ingest", "template.read", "score.write"),
    ),
    "read-only": Role(
        "read-only",
        "Read-Only",
        "Dashboards and BI tools",
        (
            "trace.read",
            "span.read",
            "session.read",
            "score.read",
            "dataset.read",
            "metrics.read",
        ),
    ),
    "full-access": Role("full-access", "Full Access", "Admin and CI pipelines", None),
    CUSTOM: Role(CUSTOM, "Custom", "Pick the permissions one by one", ()),
}


def normalize_permissions(names: Iterable[str]) -> list[str]:
    """Validate permission names, map aliases, dedupe; catalog order. Raises on unknown."""
    wanted: set[str] = set()
    for raw in names:
        name = ALIASES.get(raw, raw)
        if name not in PERMISSION_NAMES:
            raise InvalidPermissions(f"Unknown permission '{raw}'", permission=raw)
        wanted.add(name)
    return [p.name for p in PERMISSIONS if p.name in wanted]


def resolve_role(role: str | None, permissions: Iterable[str] | None) -> tuple[str, list[str]]:
    """Turn a create/edit request's role and permissions into (role, stored permissions).

    ``permissions`` counts only for ``custom``; given alone it means ``custom``.
    """
    perms = list(permissions or [])
    if role is None:
        role = CUSTOM if perms else None
    if role is None:
        raise InvalidPermissions()
    if role not in ROLES:
        raise InvalidPermissions(f"Unknown role '{role}'", role=role)
    if role != CUSTOM:
        return role, []
    stored = normalize_permissions(perms)
    if not stored:
        raise InvalidPermissions()
    return role, stored


def resolve_permissions(role: str, custom: Iterable[str]) -> frozenset[str]:
    """The permissions a key holds now: presets come from the catalog of this version."""
    if role == CUSTOM:
        return frozenset(custom) & PERMISSION_NAMES
    preset = ROLES.get(role)
    if preset is None:
        return frozenset()
    if preset.permissions is None:
        return PERMISSION_NAMES
    return frozenset(preset.permissions)


def ordered(permissions: Iterable[str]) -> list[str]:
    wanted = set(permissions)
    return [p.name for p in PERMISSIONS if p.name in wanted]
