from __future__ import annotations

import typer

app = typer.Typer(help="Publish built templates and datasets to a gateway.", no_args_is_help=True)
