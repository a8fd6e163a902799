"""Wire shapes of /v1/datasets: one schema per direction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator

from agentmark_gateway.datasets.mapping import check_source
from agentmark_gateway.jsonvalues import check_storable
from agentmark_gateway.pagination import Pagination
from agentmark_gateway.request_body import RequestBody

MAX_IMPORT_IDS = 100


class DatasetRowIn(RequestBody):
    """One dataset row, as a line of a ``.jsonl`` file or an appended row."""

    input: dict[str, Any] = Field(description="The prompt's props for this row.")
    expected_output: Any = Field(default=None, description="What a correct answer looks like.")
    metadata: dict[str, Any] | None = Field(default=None, description="Free-form notes.")

    @model_validator(mode="after")
    def _storable(self) -> DatasetRowIn:
        # FastAPI's JSON parser lets NaN through; the databases would not.
        check_storable(self.input)
        check_storable(self.expected_output)
        check_storable(self.metadata)
        return self

    def to_data(self) -> dict[str, Any]:
        """The row as stored and served: the fields the writer gave (an explicit null stays)."""
        data = self.model_dump(exclude_unset=True)
        if data.get("metadata", {}) is None:
            del data["metadata"]
        return data


class DatasetPublic(BaseModel):
    name: str
    row_count: int
    created_at: datetime
    updated_at: datetime


class DatasetList(BaseModel):
    data: list[DatasetPublic]
    pagination: Pagination


class DatasetRowPublic(BaseModel):
    line_number: int = Field(description="1-based line of the row in the dataset's .jsonl.")
    input: dict[str, Any]
    expected_output: Any = None
    metadata: dict[str, Any] | None = None
    created_at: datetime


class DatasetRowList(BaseModel):
    data: list[DatasetRowPublic]
    pagination: Pagination


class RowAppended(BaseModel):
    line_number: int


class RowAppendedResponse(BaseModel):
    data: RowAppended


Source = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(check_source)]


class RowMappingIn(RequestBody):
    """Where each field of the new rows comes from (see ``datasets.mapping``)."""

    input: Source | None = Field(default=None, description="Default: the span's input.")
    expected_output: Source | None = Field(default=None, description="Default: the span's output.")
    metadata: dict[Annotated[str, Field(min_length=1, max_length=255)], Source] | None = Field(
        default=None, description="Metadata keys and their sources, added to the source ids."
    )


SourceId = Annotated[str, Field(min_length=1, max_length=64)]


class TracesImport(RequestBody):
    trace_ids: list[SourceId] = Field(min_length=1, max_length=MAX_IMPORT_IDS)
    mapping: RowMappingIn | None = None


class SpansImport(RequestBody):
    span_ids: list[SourceId] = Field(
        min_length=1, max_length=MAX_IMPORT_IDS, description="Span ids (unique within the app)."
    )
    mapping: RowMappingIn | None = None


class ImportResult(BaseModel):
    source_id: str
    status: Literal["created", "failed"]
    line_number: int | None = None
    error: str | None = None


class ImportOutcome(BaseModel):
    added: int
    results: list[ImportResult]


class ImportResponse(BaseModel):
    data: ImportOutcome
