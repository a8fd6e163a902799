"""Schemathesis hooks for the CLI run of tests/security/test_schemathesis.py.

Loaded through ``SCHEMATHESIS_HOOKS``.

- A generated request must never take the test's own access away: an id that
  names the signed-in owner, the app or the key the run uses
  (``AGW_PROTECTED_IDS``, comma-separated) is swapped for one that names nothing.
- Names that must be unique (apps, keys, members) get a suffix no other request
  has, so that the same generated request always gets the same answer: the
  stateful runner replays scenarios, and a replayed create that answered 201
  the first time and 409 the second would send it down another path.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import schemathesis

PROTECTED = frozenset(filter(None, os.environ.get("AGW_PROTECTED_IDS", "").split(",")))


UNIQUE_FIELDS = {"/v1/apps": "name", "/v1/api-keys": "name", "/v1/members": "email"}


@schemathesis.hook
def before_call(context: Any, case: schemathesis.Case, **kwargs: Any) -> None:
    for name, value in list((case.path_parameters or {}).items()):
        if value in PROTECTED:
            case.path_parameters[name] = f"{value}-not-this-one"
    unique_names(case)


def unique_names(case: schemathesis.Case) -> None:
    field = UNIQUE_FIELDS.get(case.path) if case.method.upper() == "POST" else None
    if field and isinstance(case.body, dict) and isinstance(case.body.get(field), str):
        case.body[field] = f"{uuid.uuid4().hex[:8]}{case.body[field]}"
