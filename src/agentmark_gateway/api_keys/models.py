from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, ForeignKey, Index, Integer, String, event, text
from sqlalchemy.orm import Mapped, Mapper, mapped_column

from agentmark_gateway.db.base import Base, JSONType, UTCDateTime, new_id, utcnow


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        # A name is unique among an app's live keys; a deleted key frees its name.
        Index(
            "uq_api_keys_app_id_name_live",
            "app_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("key"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    # Only a custom key's own list; presets resolve from the catalog when checked.
    permissions: Mapped[list[str]] = mapped_column(JSONType, default=list)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    display_prefix: Mapped[str] = mapped_column(String(40))
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    rolled_to: Mapped[str | None] = mapped_column(String(40), nullable=True)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    allowed_cidrs: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


# What a ``KeyChange`` row asks every process to forget.
KEYS_CHANGED = "keys"  # the named key, or every key of the named app
TEMPLATES_CHANGED = "templates"  # the named app's cached template answers


class KeyChange(Base):
    """One row per change that other processes' caches must hear of: an edit,
    delete or roll of a key, an app deletion (``kind`` "keys"), or a template
    published or deleted (``kind`` "templates").

    Every process polls this table and drops what a row names from its caches,
    so a change made through any process is honoured by all within a poll
    interval; on PostgreSQL each row also wakes every process's poll as it
    commits (``announce_change``). Rows older than an hour are pruned by the
    polling processes.
    """

    __tablename__ = "key_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    app_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    kind: Mapped[str] = mapped_column(String(16), default=KEYS_CHANGED, server_default=KEYS_CHANGED)
    # Each poll reads the last seconds of rows by this column.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


# PostgreSQL channel on which key_changes rows are announced (api_keys/change_listener.py).
CHANGES_CHANNEL = "agentmark_key_changes"


@event.listens_for(KeyChange, "after_insert")
def announce_change(_mapper: Mapper[KeyChange], connection: Connection, _row: KeyChange) -> None:
    """Every row a session adds (how each change is recorded) wakes every process's poll.

    Sent in the row's own transaction, so PostgreSQL delivers it when the row
    commits (never for a rolled-back one); the notices of one transaction,
    being identical, arrive as one. SQLite cannot push: it is polled only.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text(f"NOTIFY {CHANGES_CHANNEL}"))
