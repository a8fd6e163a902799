"""experiments are derived from spans and scores; runs stored by POST /v1/experiments converted

A run is now what the clients record: one root span (one trace) per dataset row,
marked with ``agentmark.dataset_*`` attributes, and scores on the row's trace id.
The trace roll-up gains the marks a run is read by (run name, dataset path,
experiment key, tree hash, commit, prompt name) and the time its first spans
were stored; both are filled here for the traces already stored.

A run's marks are now also read as metadata (``agentmark.metadata.<key>``) and
as the old AI SDK adapter wrote them (``ai.telemetry.metadata.<key>``, on the AI
SDK's spans): spans stored with a run id only in those forms get their run id
(and prompt name) here, and so do their traces.

Runs stored through the removed ``POST /v1/experiments`` are converted into that
form, not dropped: dropping would lose them. Each item becomes a row of its run:

- an item whose trace is stored (and not already a row of another run) gets the
  run's marks on that trace's root span, so its latency, cost and tokens still
  come from its own spans;
- any other item becomes a root span of its own (its trace id when it named one
  that was never stored, else a new one) at the time the run was recorded, with
  its error as the span's status;
- its scores become scores of that trace (source ``experiment``).

The run keeps its id (``exp_...``) as ``dataset_run_id``, so its address does not
change. The experiment tables are then dropped. A downgrade recreates them empty:
converted runs stay spans and scores.

Revision ID: 20261206_0005
Revises: 20261127_0004
Create Date: 2026-12-06 18:00:00
"""

import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "20261206_0005"
down_revision: str | None = "20261127_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
MARKS = ("dataset_run_name", "dataset_path", "experiment_key", "tree_hash", "commit_sha")


def _forms(key: str) -> tuple[str, ...]:
    return (f"agentmark.{key}", f"agentmark.metadata.{key}", f"ai.telemetry.metadata.{key}")


# The attributes each mark is read from, best first (traces/derive.py), as of this revision.
MARK_KEYS = {
    "dataset_run_name": _forms("dataset_run_name"),
    "dataset_path": _forms("dataset_path"),
    "experiment_key": ("agentmark.experiment_key",),
    "tree_hash": ("agentmark.source_tree_hash",),
    "commit_sha": _forms("commit_sha")[1:],
}
RUN_ID_KEYS = _forms("dataset_run_id")
PROMPT_NAME_KEYS = _forms("prompt_name")
WIDE = {"experiment_key", "tree_hash", "commit_sha"}  # String(255) columns
CHUNK = 500

traces = sa.table(
    "traces",
    sa.column("app_id", sa.String),
    sa.column("trace_id", sa.String),
    sa.column("trace_name", sa.Text),
    sa.column("root_name", sa.Text),
    sa.column("first_name", sa.Text),
    sa.column("start_time_ns", sa.BigInteger),
    sa.column("end_time_ns", sa.BigInteger),
    sa.column("span_count", sa.Integer),
    sa.column("status_code", sa.Integer),
    sa.column("input_tokens", sa.BigInteger),
    sa.column("output_tokens", sa.BigInteger),
    sa.column("cost", sa.Float),
    sa.column("dataset_run_id", sa.String),
    sa.column("dataset_run_name", sa.Text),
    sa.column("dataset_path", sa.Text),
    sa.column("experiment_key", sa.String),
    sa.column("tree_hash", sa.String),
    sa.column("commit_sha", sa.String),
    sa.column("prompt_name", sa.Text),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
spans = sa.table(
    "spans",
    sa.column("id", sa.BigInteger),
    sa.column("app_id", sa.String),
    sa.column("trace_id", sa.String),
    sa.column("span_id", sa.String),
    sa.column("parent_span_id", sa.String),
    sa.column("name", sa.Text),
    sa.column("kind", sa.Integer),
    sa.column("start_time_ns", sa.BigInteger),
    sa.column("end_time_ns", sa.BigInteger),
    sa.column("duration_ms", sa.Float),
    sa.column("status_code", sa.Integer),
    sa.column("status_message", sa.Text),
    sa.column("attributes", JSON_TYPE),
    sa.column("resource_attributes", JSON_TYPE),
    sa.column("events", JSON_TYPE),
    sa.column("links", JSON_TYPE),
    sa.column("scope_name", sa.String),
    sa.column("trace_name", sa.Text),
    sa.column("tags", JSON_TYPE),
    sa.column("input_tokens", sa.Integer),
    sa.column("output_tokens", sa.Integer),
    sa.column("dataset_run_id", sa.String),
    sa.column("prompt_name", sa.Text),
    sa.column("input", sa.Text),
    sa.column("output", sa.Text),
    sa.column("received_at", sa.DateTime(timezone=True)),
)
scores = sa.table(
    "scores",
    sa.column("id", sa.String),
    sa.column("app_id", sa.String),
    sa.column("resource_id", sa.String),
    sa.column("name", sa.String),
    sa.column("score", sa.Float),
    sa.column("label", sa.String),
    sa.column("reason", sa.Text),
    sa.column("type", sa.String),
    sa.column("source", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
experiments = sa.table(
    "experiments",
    sa.column("id", sa.String),
    sa.column("app_id", sa.String),
    sa.column("name", sa.String),
    sa.column("experiment_key", sa.String),
    sa.column("dataset_path", sa.String),
    sa.column("prompt_path", sa.String),
    sa.column("commit_sha", sa.String),
    sa.column("tree_hash", sa.String),
    sa.column("metadata", JSON_TYPE),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
experiment_items = sa.table(
    "experiment_items",
    sa.column("experiment_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("input", JSON_TYPE),
    sa.column("expected_output", JSON_TYPE),
    sa.column("output", JSON_TYPE),
    sa.column("trace_id", sa.String),
    sa.column("scores", JSON_TYPE),
    sa.column("error", sa.Text),
)


def upgrade() -> None:
    with op.batch_alter_table("traces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dataset_run_name", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("dataset_path", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("experiment_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("tree_hash", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("commit_sha", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("prompt_name", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("received_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_traces_app_id_dataset_run_id", ["app_id", "dataset_run_id"], unique=False
        )
        batch_op.create_index(
            "ix_traces_app_id_experiment_key", ["app_id", "experiment_key"], unique=False
        )
    connection = op.get_bind()
    _backfill(connection)
    _convert_runs(connection)
    _retire_experiment_write(connection)
    with op.batch_alter_table("experiment_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_experiment_items_experiment_id"))
    op.drop_table("experiment_items")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index("ix_experiments_app_id_experiment_key")
        batch_op.drop_index("ix_experiments_app_id_created_at")
    op.drop_table("experiments")


api_keys = sa.table(
    "api_keys",
    sa.column("id", sa.String),
    sa.column("permissions", JSON_TYPE),
)


def _retire_experiment_write(connection: sa.Connection) -> None:
    """Take the removed ``experiment.write`` out of custom keys' stored lists.

    The key check already ignores names the catalog does not know; this keeps
    what the dashboard, the CLI and the audit log show equal to what a key can do.
    """
    rows = connection.execute(sa.select(api_keys.c.id, api_keys.c.permissions)).all()
    for key_id, permissions in rows:
        if permissions and "experiment.write" in permissions:
            kept = [name for name in permissions if name != "experiment.write"]
            connection.execute(
                api_keys.update().where(api_keys.c.id == key_id).values(permissions=kept)
            )


def _backfill(connection: sa.Connection) -> None:
    """The new roll-up columns of the traces already stored."""
    connection.execute(
        sa.text(
            "UPDATE traces SET received_at = (SELECT min(spans.received_at) FROM spans "
            "WHERE spans.app_id = traces.app_id AND spans.trace_id = traces.trace_id)"
        )
    )
    _mark_runs(connection)
    run_traces = connection.execute(
        sa.select(traces.c.app_id, traces.c.trace_id)
        .where(traces.c.dataset_run_id.is_not(None))
        .order_by(traces.c.app_id, traces.c.trace_id)
    ).all()
    for start in range(0, len(run_traces), CHUNK):
        chunk = run_traces[start : start + CHUNK]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        rows = connection.execute(
            sa.select(spans.c.app_id, spans.c.trace_id, spans.c.attributes, spans.c.prompt_name)
            .where(sa.tuple_(spans.c.app_id, spans.c.trace_id).in_([tuple(r) for r in chunk]))
            .order_by(spans.c.id)
        )
        for app_id, trace_id, attributes, prompt_name in rows:
            marks = found.setdefault((app_id, trace_id), {})
            for mark, keys in MARK_KEYS.items():
                value = _label(_first(attributes, keys), 255 if mark in WIDE else None)
                if value is not None:
                    marks.setdefault(mark, value)
            if prompt_name:
                marks.setdefault("prompt_name", prompt_name)
        for (app_id, trace_id), marks in found.items():
            if marks:
                connection.execute(
                    traces.update()
                    .where(traces.c.app_id == app_id, traces.c.trace_id == trace_id)
                    .values(**marks)
                )


def _mark_runs(connection: sa.Connection) -> None:
    """Run ids (and prompt names) of the spans marked only as metadata, and their traces'.

    Before this revision a span's run id was read from ``agentmark.dataset_run_id``
    alone, so these spans and their traces have none yet.
    """
    other_keys = RUN_ID_KEYS[1:]
    if connection.dialect.name == "postgresql":
        marked = sa.or_(*(sa.func.jsonb_exists(spans.c.attributes, key) for key in other_keys))
    else:
        marked = sa.or_(
            *(
                sa.func.json_extract(spans.c.attributes, f'$."{key}"').is_not(None)
                for key in other_keys
            )
        )
    rows = connection.execute(
        sa.select(
            spans.c.id, spans.c.app_id, spans.c.trace_id, spans.c.attributes, spans.c.prompt_name
        )
        .where(spans.c.dataset_run_id.is_(None), marked)
        .order_by(spans.c.id)
    ).all()
    runs: dict[tuple[str, str], str] = {}
    for span_id, app_id, trace_id, attributes, prompt_name in rows:
        run_id = _label(_first(attributes, RUN_ID_KEYS), 255)
        if run_id is None:
            continue
        connection.execute(
            spans.update()
            .where(spans.c.id == span_id)
            .values(
                dataset_run_id=run_id,
                prompt_name=prompt_name or _label(_first(attributes, PROMPT_NAME_KEYS), None),
            )
        )
        # A trace's run is its first span's, as ingest rolls it up.
        runs.setdefault((app_id, trace_id), run_id)
    for (app_id, trace_id), run_id in runs.items():
        connection.execute(
            traces.update()
            .where(
                traces.c.app_id == app_id,
                traces.c.trace_id == trace_id,
                traces.c.dataset_run_id.is_(None),
            )
            .values(dataset_run_id=run_id)
        )


def _first(attributes: dict[str, Any] | None, keys: Sequence[str]) -> Any:
    for key in keys:
        value = (attributes or {}).get(key)
        if value is not None and value != "":
            return value
    return None


def _label(value: Any, width: int | None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value).strip()
    if not text:
        return None
    return text[:width] if width else text


def _text(value: Any) -> str:
    """Strings as they are, anything else as compact JSON (as the SDK writes its marks)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _convert_runs(connection: sa.Connection) -> None:
    now = datetime.now(UTC)
    for run in connection.execute(sa.select(experiments).order_by(experiments.c.created_at)).all():
        created = run.created_at if run.created_at.tzinfo else run.created_at.replace(tzinfo=UTC)
        created_ns = int(created.timestamp() * 1_000_000) * 1_000
        marks: dict[str, Any] = {
            "agentmark.dataset_run_id": run.id,
            "agentmark.dataset_run_name": run.name,
        }
        optional = {
            "agentmark.dataset_path": run.dataset_path,
            "agentmark.experiment_key": run.experiment_key,
            "agentmark.source_tree_hash": run.tree_hash,
            "agentmark.prompt_path": run.prompt_path,
            # The old reads showed the prompt's path as its name.
            "agentmark.prompt_name": run.prompt_path,
            "agentmark.metadata.commit_sha": run.commit_sha,
        }
        marks.update({key: value for key, value in optional.items() if value is not None})
        for key, value in (run.metadata or {}).items():
            marks.setdefault(f"agentmark.metadata.{key}", _text(value))
        trace_marks = {
            "dataset_run_id": run.id,
            "dataset_run_name": run.name,
            "dataset_path": run.dataset_path,
            "experiment_key": run.experiment_key,
            "tree_hash": run.tree_hash,
            "commit_sha": run.commit_sha,
            "prompt_name": run.prompt_path,
        }
        items = connection.execute(
            sa.select(experiment_items)
            .where(experiment_items.c.experiment_id == run.id)
            .order_by(experiment_items.c.position)
        ).all()
        for item in items:
            item_marks = {**marks, "agentmark.dataset_item_name": str(item.position)}
            item_marks["agentmark.dataset_input"] = _text(item.input)
            if item.expected_output is not None:
                item_marks["agentmark.dataset_expected_output"] = _text(item.expected_output)
            output = None if item.output is None else _text(item.output)
            trace_id = _stamp_stored_trace(
                connection, run.app_id, item.trace_id, item_marks, output
            )
            if trace_id is None:
                trace_id = _add_row_trace(
                    connection,
                    app_id=run.app_id,
                    trace_id=_unused_trace_id(connection, run.app_id, item.trace_id),
                    name=run.name,
                    attributes=item_marks,
                    output=output,
                    error=item.error,
                    # A microsecond apart: rows read back in the order they were recorded.
                    at_ns=created_ns + item.position * 1_000,
                    received_at=created,
                    now=now,
                )
                trace_marks_now = trace_marks
            else:
                trace_marks_now = {k: v for k, v in trace_marks.items() if v is not None}
            connection.execute(
                traces.update()
                .where(traces.c.app_id == run.app_id, traces.c.trace_id == trace_id)
                .values(**trace_marks_now)
            )
            for score in item.scores or []:
                connection.execute(
                    scores.insert().values(
                        id=str(uuid.uuid4()),
                        app_id=run.app_id,
                        resource_id=trace_id,
                        name=score["name"],
                        score=float(score["score"]),
                        label=score.get("label"),
                        reason=score.get("reason"),
                        type="experiment",
                        source="experiment",
                        created_at=created,
                    )
                )


def _stamp_stored_trace(
    connection: sa.Connection,
    app_id: str,
    trace_id: str | None,
    marks: dict[str, Any],
    output: str | None,
) -> str | None:
    """Marks the root span of the item's stored trace as a row of the run; its id, or None
    when there is no such trace, it has no root span, or it already is a row of a run."""
    if trace_id is None:
        return None
    trace = connection.execute(
        sa.select(traces.c.dataset_run_id).where(
            traces.c.app_id == app_id, traces.c.trace_id == trace_id
        )
    ).first()
    if trace is None or trace.dataset_run_id is not None:
        return None
    root = connection.execute(
        sa.select(spans.c.id, spans.c.attributes, spans.c.prompt_name, spans.c.output)
        .where(
            spans.c.app_id == app_id,
            spans.c.trace_id == trace_id,
            spans.c.parent_span_id.is_(None),
        )
        .order_by(spans.c.start_time_ns, spans.c.id)
        .limit(1)
    ).first()
    if root is None:
        return None
    attributes = {**(root.attributes or {}), **marks}
    if output is not None and not root.output:
        # The output the run recorded, where the trace itself has none.
        attributes["agentmark.response.output"] = output
    connection.execute(
        spans.update()
        .where(spans.c.id == root.id)
        .values(
            attributes=attributes,
            dataset_run_id=marks["agentmark.dataset_run_id"],
            prompt_name=root.prompt_name or marks.get("agentmark.prompt_name"),
            output=root.output or output,
        )
    )
    return trace_id


def _unused_trace_id(connection: sa.Connection, app_id: str, wanted: str | None) -> str:
    """The item's own trace id when nothing of it is stored, else a new one."""
    if wanted:
        taken = connection.execute(
            sa.select(traces.c.trace_id).where(
                traces.c.app_id == app_id, traces.c.trace_id == wanted
            )
        ).first()
        if taken is None:
            return wanted
    return uuid.uuid4().hex


def _add_row_trace(
    connection: sa.Connection,
    *,
    app_id: str,
    trace_id: str,
    name: str,
    attributes: dict[str, Any],
    output: str | None,
    error: str | None,
    at_ns: int,
    received_at: datetime,
    now: datetime,
) -> str:
    if output is not None:
        attributes = {**attributes, "agentmark.response.output": output}
    status = 2 if error is not None else 0
    connection.execute(
        spans.insert().values(
            app_id=app_id,
            trace_id=trace_id,
            span_id=secrets.token_hex(8),
            parent_span_id=None,
            name=name,
            kind=1,
            start_time_ns=at_ns,
            end_time_ns=at_ns,
            duration_ms=0.0,
            status_code=status,
            status_message=error,
            attributes=attributes,
            resource_attributes={},
            events=[],
            links=[],
            scope_name="agentmark",
            trace_name=None,
            tags=[],
            input_tokens=0,
            output_tokens=0,
            dataset_run_id=attributes["agentmark.dataset_run_id"],
            prompt_name=attributes.get("agentmark.prompt_name"),
            input=None,
            output=output,
            received_at=received_at,
        )
    )
    connection.execute(
        traces.insert().values(
            app_id=app_id,
            trace_id=trace_id,
            trace_name=None,
            root_name=name,
            first_name=name,
            start_time_ns=at_ns,
            end_time_ns=at_ns,
            span_count=1,
            status_code=status,
            input_tokens=0,
            output_tokens=0,
            cost=0.0,
            received_at=received_at,
            updated_at=now,
        )
    )
    return trace_id


def downgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("experiment_key", sa.String(length=255), nullable=True),
        sa.Column("dataset_path", sa.String(length=1024), nullable=True),
        sa.Column("prompt_path", sa.String(length=1024), nullable=True),
        sa.Column("commit_sha", sa.String(length=64), nullable=True),
        sa.Column("tree_hash", sa.String(length=64), nullable=True),
        sa.Column("metadata", JSON_TYPE, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["apps.id"], name=op.f("fk_experiments_app_id_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
    )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_experiments_app_id_created_at", ["app_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_experiments_app_id_experiment_key", ["app_id", "experiment_key"], unique=False
        )
    op.create_table(
        "experiment_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("input", JSON_TYPE, nullable=True),
        sa.Column("expected_output", JSON_TYPE, nullable=True),
        sa.Column("output", JSON_TYPE, nullable=True),
        sa.Column("trace_id", sa.String(length=32), nullable=True),
        sa.Column("scores", JSON_TYPE, nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_items_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiment_items")),
    )
    with op.batch_alter_table("experiment_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_experiment_items_experiment_id"), ["experiment_id"], unique=False
        )
    with op.batch_alter_table("traces", schema=None) as batch_op:
        batch_op.drop_index("ix_traces_app_id_experiment_key")
        batch_op.drop_index("ix_traces_app_id_dataset_run_id")
        for column in (*MARKS, "prompt_name", "received_at"):
            batch_op.drop_column(column)
