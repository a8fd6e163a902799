from __future__ import annotations

import typer

from agentmark_gateway.permissions.table import markdown_table


def show() -> None:
    """The route to permission table, generated from the code."""
    typer.echo(markdown_table(), nl=False)
