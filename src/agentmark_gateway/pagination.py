"""Uniform list pagination: ``limit`` (default 50, at most 1000) and ``offset``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import BaseModel

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Rows to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset)


PageDep = Annotated[Page, Depends(page_params)]


class Pagination(BaseModel):
    total: int
    limit: int
    offset: int


def paginated(data: list[Any], total: int, page: Page) -> dict[str, Any]:
    return {
        "data": data,
        "pagination": {"total": total, "limit": page.limit, "offset": page.offset},
    }
