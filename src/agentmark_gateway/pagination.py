"""Uniform list pagination: ``limit`` (default 50, at most 1000) and ``offset``.

A page's ``total`` is counted, but never further than ``TOTAL_BOUND`` rows past
the page's offset: an exact count of a big app's spans scanned them all on every
page. Past the bound, ``total`` is a lower bound (``offset + TOTAL_BOUND + 1``)
and the answer carries ``X-Total-Capped: true``; the next pages count on from
where they are, so a client that pages while ``offset + limit < total`` still
reaches the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query, Response
from pydantic import BaseModel
from sqlalchemy import Select, func, select

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
TOTAL_BOUND = 10_000
TOTAL_CAPPED_HEADER = "X-Total-Capped"


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int
    # The answer being built, to flag a capped total; None outside a request.
    response: Response | None = field(default=None, compare=False, repr=False)


async def page_params(
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Rows per page")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1, description="Rows to skip")] = 0,
) -> Page:
    return Page(limit=limit, offset=offset, response=response)


PageDep = Annotated[Page, Depends(page_params)]


class Pagination(BaseModel):
    total: int
    limit: int
    offset: int


def bounded_count(rows: Select[Any], offset: int) -> Select[int]:
    """``SELECT count(*)`` of ``rows``, reading no more than ``TOTAL_BOUND`` past ``offset``
    (and one more, to tell a capped total from an exact one)."""
    return select(func.count()).select_from(rows.limit(offset + TOTAL_BOUND + 1).subquery())


def paginated(data: list[Any], total: int, page: Page) -> dict[str, Any]:
    if total > page.offset + TOTAL_BOUND and page.response is not None:
        page.response.headers[TOTAL_CAPPED_HEADER] = "true"
    return {
        "data": data,
        "pagination": {"total": total, "limit": page.limit, "offset": page.offset},
    }
