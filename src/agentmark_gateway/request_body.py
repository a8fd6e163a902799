"""The base of every JSON request body that names its fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

# More keys than any body of the gateway has fields, with room for aliases.
MAX_KEYS = 64


class RequestBody(BaseModel):
    """A request body whose unknown fields are refused.

    An object with more keys than the model could know is refused before its
    fields are validated: otherwise a body of a million unknown keys costs a
    million error objects (seconds of the event loop) before the first is sent.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _few_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_KEYS:
            raise ValueError(
                f"the object has {len(data)} fields; this body has at most {len(cls.model_fields)}"
            )
        return data
