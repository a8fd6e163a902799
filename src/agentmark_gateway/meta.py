"""Public routes: health and what this gateway serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import text

from agentmark_gateway import __version__

router = APIRouter(tags=["Meta"])

CAPABILITIES = {
    "traces": True,
    "spans": True,
    "sessions": True,
    "scores": True,
    "templates": True,
    "datasets": True,
    "metrics": True,
    "experiments": True,
}


@router.get("/health", summary="Liveness and database reachability")
async def health(request: Request) -> dict[str, Any]:
    gateway = request.app.state.gateway
    async with gateway.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}


@router.get("/v1/capabilities", summary="Which features this gateway serves")
async def capabilities() -> dict[str, Any]:
    return {"data": {"version": __version__, "features": CAPABILITIES}}
