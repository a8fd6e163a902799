from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from agentmark_gateway.db.base import Base


class RateLimitCounter(Base):
    """Requests admitted in one window for one bucket, summed over every process.

    Only the ``database`` store uses it. Rows of past windows are deleted as the
    windows roll, so the table holds about two windows of active keys and apps.
    """

    __tablename__ = "rate_limit_counters"

    # "key:<key id>" or "app:<app id>".
    bucket: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The window's number since the epoch: int(unix time // window seconds).
    window_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
