"""Numbered pages of the dashboard's lists (sessions, datasets, experiments, scores).

The traces list pages by keyset instead (``trace_pages``): it is the one list that
grows without bound in normal use.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# A page number past this is no one's reading; it would only make the database count.
MAX_PAGE = 1000
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]


def offset(page: int, size: int) -> int:
    """Rows before page ``page`` of ``size`` rows."""
    return (page - 1) * size


def has_more(page: int, size: int, total: int) -> bool:
    """Whether a page follows page ``page`` of a list of ``total`` rows."""
    return page * size < total and page < MAX_PAGE
