from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from agentmark_gateway.db.base import Base, UTCDateTime, new_id, utcnow


class App(Base):
    __tablename__ = "apps"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("app"))
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # Days its traces are kept; None: AGENTMARK_RETENTION_DAYS, 0: for ever (retention.py).
    retention_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Key hygiene (api_keys/policy.py): the longest a new expiry may reach, in days
    # (None: no limit), and whether every key must have an expiry at all.
    key_max_lifetime_days: Mapped[int | None] = mapped_column(Integer, nullable=True)
    key_expiry_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
