from agentmark_gateway.permissions.catalog import (
    PERMISSIONS,
    ROLES,
    Permission,
    Role,
    normalize_permissions,
    resolve_permissions,
)

__all__ = [
    "PERMISSIONS",
    "ROLES",
    "Permission",
    "Role",
    "normalize_permissions",
    "resolve_permissions",
]
