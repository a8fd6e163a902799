"""Organization roles (owner, admin, write, read) and what each may do."""

from __future__ import annotations

from enum import StrEnum

from agentmark_gateway.permissions.catalog import PERMISSION_NAMES


class OrgRole(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    WRITE = "write"
    READ = "read"


class Action(StrEnum):
    KEYS_MANAGE = "keys.manage"
    KEYS_LIST = "keys.list"
    APPS_MANAGE = "apps.manage"
    APPS_READ = "apps.read"
    MEMBERS_MANAGE = "members.manage"
    MEMBERS_READ = "members.read"
    AUDIT_READ = "audit.read"
    # Adding rows to an app's datasets from the dashboard (from a trace or a span).
    DATASETS_WRITE = "datasets.write"


_EVERYONE = frozenset(OrgRole)
_ADMINS = frozenset({OrgRole.OWNER, OrgRole.ADMIN})

ALLOWED: dict[Action, frozenset[OrgRole]] = {
    Action.KEYS_MANAGE: frozenset({OrgRole.OWNER, OrgRole.ADMIN, OrgRole.WRITE}),
    Action.KEYS_LIST: _EVERYONE,
    Action.APPS_MANAGE: _ADMINS,
    Action.APPS_READ: _EVERYONE,
    Action.MEMBERS_MANAGE: _ADMINS,
    Action.MEMBERS_READ: _EVERYONE,
    Action.AUDIT_READ: _EVERYONE,
    Action.DATASETS_WRITE: frozenset({OrgRole.OWNER, OrgRole.ADMIN, OrgRole.WRITE}),
}

_READ_PERMISSIONS = frozenset(p for p in PERMISSION_NAMES if p.endswith(".read"))


def can(role: str, action: Action) -> bool:
    return role in ALLOWED[action]


def grantable_permissions(role: str) -> frozenset[str]:
    """What a user of this role may put on a key: no more than the role could use itself."""
    if role in (OrgRole.OWNER, OrgRole.ADMIN, OrgRole.WRITE):
        return PERMISSION_NAMES
    if role == OrgRole.READ:
        return _READ_PERMISSIONS
    return frozenset()
