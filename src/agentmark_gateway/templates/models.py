from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from agentmark_gateway.db.base import Base, JSONType, UTCDateTime, new_id, utcnow


class Template(Base):
    """A published, built template AST at a path (``.mdx`` or ``.json``)."""

    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("app_id", "path"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tpl"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # The frontmatter ``name``, read at publish time, for ``GET /v1/prompts?name=``.
    prompt_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
