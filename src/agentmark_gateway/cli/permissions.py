from __future__ import annotations

import typer

from agentmark_gateway.permissions.table import markdown_table
from agentmark_gateway.routers import api_routes


def show() -> None:
    """The route to permission table, generated from the code."""
    typer.echo(markdown_table(api_routes()), nl=False)
