from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from agentmark_gateway.db.base import Base, JSONType, UTCDateTime, new_id, utcnow


class Experiment(Base):
    """One run of a prompt over a dataset."""

    __tablename__ = "experiments"
    __table_args__ = (
        Index("ix_experiments_app_id_experiment_key", "app_id", "experiment_key"),
        Index("ix_experiments_app_id_created_at", "app_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("exp"))
    app_id: Mapped[str] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    experiment_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dataset_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    prompt_path: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    commit_sha: Mapped[str | None] = mapped_column(String(64), nullable=True)
    tree_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ExperimentItem(Base):
    __tablename__ = "experiment_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    input: Mapped[Any] = mapped_column(JSONType, nullable=True)
    expected_output: Mapped[Any] = mapped_column(JSONType, nullable=True)
    output: Mapped[Any] = mapped_column(JSONType, nullable=True)
    trace_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # [{"name": ..., "score": ..., "label": ..., "reason": ...}]
    scores: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
