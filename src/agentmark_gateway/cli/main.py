"""``agentmark-gateway``: serve, migrate, and manage users, apps and keys."""

from __future__ import annotations

import typer

from agentmark_gateway.cli import apps, audit, db, keys, permissions, serve, templates, users

app = typer.Typer(
    help="AgentMark Gateway: scoped API keys in front of an app's traces, scores and templates.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("permissions")(permissions.show)
app.command("audit")(audit.show)
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="users")
app.add_typer(apps.app, name="apps")
app.add_typer(keys.app, name="keys")
app.add_typer(templates.app, name="templates")
