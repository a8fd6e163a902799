"""Schemathesis over the whole API document, against a gateway on a real socket.

Three runs, every request with a full-access key and the app id header (data
routes) or an owner's session token (management routes), checked for: no 5xx,
and a documented status code, content type and body schema every time.

- Every operation, with valid and with invalid generated input (schemathesis'
  Python API, one Hypothesis run per operation and mode).
- Every link of the document (create, then read, edit, roll or delete what was
  created): the record answers at once.
- ``schemathesis run`` itself, as in CI: its coverage phase (boundary values for
  every parameter) and its stateful phase (generated sequences over the links).

Bounded by ``MAX_EXAMPLES`` per operation, ``LINK_EXAMPLES`` per link and
``STATEFUL_EXAMPLES`` scenarios: about a minute per run on SQLite.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from agentmark_gateway.permissions.table import route_rows
from agentmark_gateway.routers import api_routes
from tests.security.schemathesis_hooks import unique_names

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 15
STATEFUL_EXAMPLES = 100
LINK_EXAMPLES = 10
ROOT = Path(__file__).resolve().parents[2]
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CHECK_NAMES = [check.__name__ for check in CHECKS]
DATA_ROUTES = frozenset(
    (row.method, row.path) for row in route_rows(api_routes()) if row.kind == "data"
)
PASSWORD = "correct horse battery"


class Credentials:
    """Headers for each operation; never lets a generated request remove the test's own access."""

    def __init__(self, live: Any) -> None:
        self.live = live
        me = httpx.get(f"{live.base_url}/v1/auth/me", headers=live.session_headers).json()
        keys = httpx.get(f"{live.base_url}/v1/api-keys", headers=live.session_headers).json()
        self.protected = {
            "user_id": me["data"]["id"],
            "app_id": live.app.app_id,
            "key_id": keys["data"][0]["id"],
        }

    def headers(self, method: str, path: str) -> dict[str, str]:
        if (method.upper(), path) in DATA_ROUTES:
            return dict(self.live.data_headers)
        if path == "/v1/auth/login":
            return {}
        if path == "/v1/auth/logout":
            return {"Authorization": f"Bearer {self._fresh_session()}"}
        return dict(self.live.session_headers)

    def _fresh_session(self) -> str:
        response = httpx.post(
            f"{self.live.base_url}/v1/auth/login",
            json={"email": "owner@example.com", "password": PASSWORD},
        )
        return str(response.json()["data"]["token"])

    def unique_names(self, case: schemathesis.Case) -> None:
        """A create's name or email made unique, so that it can succeed (see the hooks)."""
        unique_names(case)

    def shield(self, case: schemathesis.Case) -> None:
        """A generated id that names the test's own user, app or key is swapped for another."""
        for name, value in list((case.path_parameters or {}).items()):
            if self.protected.get(name) == value:
                case.path_parameters[name] = f"{value}-not-this-one"


@pytest.fixture(scope="module")
def credentials(live) -> Credentials:
    return Credentials(live)


@pytest.fixture(scope="module")
def api_schema(live) -> Iterator[Any]:
    config = schemathesis.Config.from_dict(
        {
            "request-timeout": 30,
        }
    )
    yield schemathesis.openapi.from_url(f"{live.base_url}/v1/openapi.json", config=config)


def _operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_the_run_covers_every_operation_of_the_document(api_schema, live):
    documented = httpx.get(f"{live.base_url}/v1/openapi.json").json()["paths"]
    count = sum(len(operations) for operations in documented.values())
    assert len(_operations(api_schema)) == count
    assert {(m, p) for m, p in DATA_ROUTES} <= {
        (op.method.upper(), op.path) for op in _operations(api_schema)
    }


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented_and_never_5xx(api_schema, credentials, mode):
    problems: list[str] = []
    for operation in _operations(api_schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            credentials.shield(case)
            headers = credentials.headers(case.method, case.path)
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # No invalid request exists for an operation without inputs (/health).
            assert mode is GenerationMode.NEGATIVE, operation.label
        except (Exception, BaseExceptionGroup) as failure:  # schemathesis reports a group
            problems.append(f"{operation.label}: {failure}")
    summary = [problem.split("\n", 1)[0] for problem in problems]
    assert not problems, "\n".join(summary) + "\n\n" + "\n\n".join(problems)


def _links(spec: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(source operationId, status, target operationId, parameter, runtime expression)."""
    found = []
    for operations in spec["paths"].values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                for link in response.get("links", {}).values():
                    for parameter, expression in link["parameters"].items():
                        found.append(
                            (
                                operation["operationId"],
                                status,
                                link["operationId"],
                                parameter,
                                expression,
                            )
                        )
    return found


def _pointer(document: Any, expression: str) -> Any:
    """The value a ``$response.body#/a/b`` expression names."""
    assert expression.startswith("$response.body#/"), expression
    for part in expression.removeprefix("$response.body#/").split("/"):
        document = document[part]
    return document


def test_every_link_of_the_document_leads_to_the_record_just_created(api_schema, credentials):
    """Create (generated input), then follow each documented link with the new id: the
    record is there at once, and every answer on the way is as documented."""
    links = _links(httpx.get(f"{credentials.live.base_url}/v1/openapi.json").json())
    assert len(links) >= 11, links
    followed: dict[str, int] = {}
    for source_id, status, target_id, parameter, expression in links:
        source = api_schema.find_operation_by_id(source_id)
        target = api_schema.find_operation_by_id(target_id)

        @given(case=source.as_strategy(), data=st.data())
        @settings(
            max_examples=LINK_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def follow(case: schemathesis.Case, data: st.DataObject) -> None:
            credentials.unique_names(case)
            created = case.call_and_validate(
                headers=credentials.headers(case.method, case.path), checks=CHECKS
            )
            if created.status_code != int(status):
                return
            value = _pointer(created.json(), expression)
            step = data.draw(target.as_strategy(path_parameters={parameter: value}))
            answer = step.call_and_validate(
                headers=credentials.headers(step.method, step.path), checks=CHECKS
            )
            assert answer.status_code != 404, f"{target.label} lost {value} just created"
            followed[target_id] = followed.get(target_id, 0) + 1

        follow()
    assert len(followed) >= 7, followed


def _toml_table(values: dict[str, str]) -> str:
    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items()) + " }"


def _cli_config(credentials: Credentials, logout_token: str) -> str:
    """Per-operation headers, as the CLI takes them: key for data routes, session elsewhere."""
    data_paths = sorted({path for _, path in DATA_ROUTES})
    session_paths = sorted(
        path
        for path in httpx.get(f"{credentials.live.base_url}/v1/openapi.json").json()["paths"]
        if path not in data_paths and path not in ("/v1/auth/login", "/v1/auth/logout")
    )
    live = credentials.live
    return "\n".join(
        [
            "[phases.stateful]",
            "max-steps = 8",
            "",
            "[phases.stateful.inference]",
            "algorithms = []",
            "",
            "[phases.stateful.generation]",
            f"max-examples = {STATEFUL_EXAMPLES}",
            "",
            "[[operations]]",
            f"include-path = {json.dumps(data_paths)}",
            f"headers = {_toml_table(live.data_headers)}",
            "",
            "[[operations]]",
            f"include-path = {json.dumps(session_paths)}",
            f"headers = {_toml_table(live.session_headers)}",
            "",
            "[[operations]]",
            'include-path = "/v1/auth/logout"',
            f"headers = {_toml_table({'Authorization': f'Bearer {logout_token}'})}",
            "",
        ]
    )


def test_stateful_sequences_answer_as_documented_and_never_5xx(live, credentials, tmp_path):
    """Schemathesis' own runner (as ``schemathesis run`` in CI), stateful phase: it chains
    operations through the links it finds in the document and in the answers."""
    config = tmp_path / "schemathesis.toml"
    config.write_text(_cli_config(credentials, credentials._fresh_session()))
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{live.base_url}/v1/openapi.json",
        "--phases",
        "coverage,stateful",
        "--checks",
        ",".join(CHECK_NAMES),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        "20261127",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        # One worker: CPython 3.11's ast.parse is not thread-safe, and Hypothesis parses
        # lambda sources while describing strategies ("AST constructor recursion depth
        # mismatch" from schemathesis' worker threads).
        "--workers",
        "1",
        "--no-color",
        "--output-sanitize",
        "true",
    ]
    environment = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.security.schemathesis_hooks",
        "AGW_PROTECTED_IDS": ",".join(credentials.protected.values()),
        "PYTHONPATH": str(ROOT),
    }
    finished = subprocess.run(
        command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    report = finished.stdout + finished.stderr
    assert finished.returncode == 0, report
    # The runner picks its own entry points (it skips creates it deems unlikely to work,
    # e.g. scores); test_every_link_of_the_document_... follows every link itself.
    covered = re.search(r"API Links: +(\d+) covered", report)
    assert covered and int(covered.group(1)) >= 3, report
