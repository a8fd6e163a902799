from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.cli.context import run
from agentmark_gateway.cli.tables import render
from agentmark_gateway.settings import Settings
from agentmark_gateway.users import service

app = typer.Typer(help="Users of the organization.", no_args_is_help=True)


@app.command("create")
def create(
    email: Annotated[str, typer.Option(help="Sign-in email")],
    role: Annotated[str, typer.Option(help="owner, admin, write or read")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Add a user. The password is prompted for, or read from stdin; never an argument."""
    service.check_role(role)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def work(session: AsyncSession, _: Settings) -> str:
        user = await service.create_user(session, email=email, role=role, password=password)
        await session.commit()
        return user.id

    user_id = run(work)
    typer.echo(f"created {role} {email.strip().lower()} ({user_id})")


@app.command("list")
def list_users() -> None:
    """Users and their roles."""

    async def work(session: AsyncSession, _: Settings) -> list[list[object]]:
        return [
            [
                u.id,
                u.email,
                u.role,
                "invited" if u.password_hash is None else "active",
                u.created_at,
            ]
            for u in await service.list_users(session)
        ]

    typer.echo(render(["ID", "EMAIL", "ROLE", "STATUS", "CREATED"], run(work)))
