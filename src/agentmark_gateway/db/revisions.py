"""The schema revisions this version of the gateway ships, read once from its migrations."""

from __future__ import annotations

from functools import cache

from alembic.script import ScriptDirectory

from agentmark_gateway.db import migrate


@cache
def _scripts() -> ScriptDirectory:
    # The URL only fills the config; reading the scripts opens no database.
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))


@cache
def head() -> str:
    """The newest revision: what ``db upgrade`` brings a database to."""
    heads = _scripts().get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {heads}")
    return heads[0]


@cache
def known() -> frozenset[str]:
    """Every revision of this version; a database at another one was made by a newer version."""
    return frozenset(script.revision for script in _scripts().walk_revisions())
