"""Short dependency aliases shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from agentmark_gateway.runtime import Gateway


async def get_gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.gateway.sessionmaker() as session:
        yield session


GatewayDep = Annotated[Gateway, Depends(get_gateway)]
DbSession = Annotated[AsyncSession, Depends(get_session)]
