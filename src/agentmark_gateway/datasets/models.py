from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from agentmark_gateway.db.base import Base, JSONType, UTCDateTime, new_id, utcnow

# Datasets whose name starts with this are not (or no longer) the app's: an upload
# still being written, or a replaced dataset whose rows are being deleted. No
# dataset name can hold it (names refuse control characters), and no list shows them.
HIDDEN_PREFIX = "\x01"


class Dataset(Base):
    """A dataset; its name is its path without ``.jsonl`` (``evals/math``: ``evals/math.jsonl``)."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("app_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ds"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DatasetRow(Base):
    __tablename__ = "dataset_rows"
    __table_args__ = (UniqueConstraint("dataset_id", "line_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"))
    line_number: Mapped[int] = mapped_column(Integer)
    # The whole JSONL object: {"input": {...}, "expected_output": ..., "metadata": ...}
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
