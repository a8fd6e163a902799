"""Every operation that both the gateway and AgentMark's reference OpenAPI
(``../shared/reference/agentmark/openapi-local-server.json``) have answers, on seeded
data, with a body the reference's response schema accepts (checked by a JSON Schema
validator, ``$ref``s resolved in the reference document).

Deliberate differences are listed, with their reason, in ``docs/compatibility.md``
(the table between the ``conformance-differences`` markers); an operation that
differs without being listed fails, and so does a listed one that no longer differs.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.fixtures.otlp import payloads
from tests.live_gateway import REPO, LiveGateway, live_gateway, shared_path

pytestmark = pytest.mark.slow

COMPATIBILITY = REPO / "docs" / "compatibility.md"
METHODS = ("get", "post", "put", "patch", "delete")
REFERENCE_URI = "urn:agentmark:reference"


def listed_differences() -> dict[tuple[str, str], str]:
    """The (method, path) → difference rows of docs/compatibility.md's marked table."""
    text = COMPATIBILITY.read_text()
    block = text.split("<!-- conformance-differences:start -->")[1]
    block = block.split("<!-- conformance-differences:end -->")[0]
    rows = {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(GET|POST|PUT|PATCH|DELETE) (/\S+)`", cells[0]) if cells else None
        if match:
            rows[(match[1], match[2])] = cells[1]
    return rows


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema → JSON Schema: ``nullable: true`` becomes a null alternative."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        if isinstance(converted.get("type"), str):
            converted["type"] = [converted["type"], "null"]
        elif "type" not in converted:
            return {"anyOf": [converted, {"type": "null"}]}
    return converted


def template(path: str) -> str:
    """A path with its parameters unnamed: ``{keyId}`` and ``{apiKeyId}`` are one route."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def pointer(*parts: str) -> str:
    return "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)


@dataclass
class Reference:
    document: dict[str, Any]
    registry: Registry

    @classmethod
    def load(cls) -> Reference:
        document = as_json_schema(
            json.loads(
                shared_path("reference", "agentmark", "openapi-local-server.json").read_text()
            )
        )
        resource = Resource.from_contents(document, default_specification=DRAFT202012)
        return cls(document, Registry().with_resource(REFERENCE_URI, resource))

    def operations(self) -> set[tuple[str, str]]:
        return {
            (method.upper(), path)
            for path, item in self.document["paths"].items()
            for method in item
            if method in METHODS
        }

    def problem(self, method: str, path: str, status: int, body: bytes) -> str | None:
        """Why an answer does not conform, or None."""
        responses = self.document["paths"][path][method.lower()]["responses"]
        if not 200 <= status < 300:
            return f"answered {status}: {body[:300]!r}"
        if str(status) not in responses:
            return f"answered {status}, the reference has {sorted(responses)}"
        content = responses[str(status)].get("content", {}).get("application/json")
        if content is None or "schema" not in content:
            return None
        location = pointer("paths", path, method.lower(), "responses", str(status))
        schema = {"$ref": f"{REFERENCE_URI}#/{location}/content/application~1json/schema"}
        validator = Draft202012Validator(schema, registry=self.registry)
        errors = sorted(validator.iter_errors(json.loads(body)), key=lambda e: list(e.path))
        if not errors:
            return None
        return "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:160]}"
            for e in errors[:3]
        )


@dataclass
class Seed:
    """Data stored through the ingest routes, and what each route needs to reach it."""

    data: dict[str, str]  # X-Agentmark-App-Id and a Full Access key
    session: dict[str, str]  # the owner's session, for management routes
    params: dict[str, str]  # path parameters by name
    spare: dict[str, str]  # things a DELETE or PATCH may consume


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, template_database: str
) -> Iterator[LiveGateway]:
    with live_gateway(tmp_path_factory, template_database) as live:
        yield live


def _ok(response: Any) -> Any:
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


@pytest.fixture(scope="module")
def seed(gateway: LiveGateway) -> Seed:
    client, admin = gateway.client, gateway.admin
    app_id = admin.create_app("conformance")
    key = admin.create_key(app_id, role="full-access")
    data = {"Authorization": f"Bearer {key['plaintext_key']}", "X-Agentmark-App-Id": app_id}
    session = {**admin.headers, "X-Agentmark-App-Id": app_id}

    now = time.time_ns()
    trace, spans = payloads.llm_trace(
        name="answer", start_ns=now, user_id="user-1", session_id="session-1", tags=["prod"]
    )
    run_id = "7f1c2d4e-5a6b-4c8d-9e0f-1a2b3c4d5e6f"
    run_trace, run_root = payloads.trace_id(), payloads.span_id()
    run_spans = [
        payloads.span(
            run_trace,
            run_root,
            name="arithmetic",
            start_ns=now + 5 * payloads.MS,
            attrs={
                "agentmark.trace_name": "arithmetic",
                "agentmark.dataset_run_id": run_id,
                "agentmark.dataset_run_name": "arithmetic",
                "agentmark.dataset_item_name": "0",
                "agentmark.dataset_path": "datasets/arithmetic.jsonl",
                "agentmark.experiment_key": "arithmetic",
                "agentmark.source_tree_hash": "tree-base",
                "agentmark.dataset_input": '{"question":"5 + 7"}',
                "agentmark.dataset_expected_output": '"12"',
                "agentmark.metadata.graph.node.id": "answer",
                "agentmark.metadata.graph.node.type": "agent",
                "agentmark.metadata.graph.node.display_name": "Answer",
            },
        ),
        payloads.span(
            run_trace,
            name="chat",
            parent=run_root,
            start_ns=now + 6 * payloads.MS,
            attrs={
                "agentmark.span.kind": "llm",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 3,
                "agentmark.response.output": "12",
                "agentmark.metadata.graph.node.id": "model",
                "agentmark.metadata.graph.node.parent_id": "answer",
            },
        ),
    ]
    payloads.post(client, data, spans + run_spans)
    scores = [
        _ok(client.post("/v1/scores", json=body, headers=data))["data"]["id"]
        for body in (
            {"resource_id": trace, "name": "accuracy", "score": 0.9, "label": "good"},
            {"resourceId": run_trace, "name": "exact", "score": 1, "source": "experiment"},
            {"resource_id": trace, "name": "accuracy", "score": 0.1},  # the one DELETE removes
        )
    ]
    for path, body in (
        (
            "haiku.prompt.mdx",
            (REPO / "tests/fixtures/agentmark/haiku.prompt.mdx.json").read_bytes(),
        ),
        (
            "datasets/arithmetic.jsonl",
            (REPO / "tests/fixtures/agentmark/datasets/arithmetic.jsonl").read_bytes(),
        ),
        (
            "agentmark.json",
            json.dumps(
                {
                    "agentmarkPath": ".",
                    "scores": {
                        "accuracy": {
                            "type": "numeric",
                            "min": 0,
                            "max": 1,
                            "description": "Right?",
                        },
                        "tone": {
                            "type": "categorical",
                            "categories": [{"label": "kind", "value": 1}],
                        },
                    },
                }
            ).encode(),
        ),
    ):
        _ok(client.put("/v1/templates", params={"path": path}, content=body, headers=data))
    _ok(client.post("/v1/datasets/conformance/rows", json={"input": {"q": "hi"}}, headers=data))
    spare_app = admin.create_app("conformance-spare")
    spare_key = admin.create_key(app_id, permissions=["trace.read"])
    return Seed(
        data=data,
        session=session,
        params={
            "traceId": trace,
            "spanId": spans[0]["spanId"],
            "sessionId": "session-1",
            "scoreId": scores[0],
            "datasetName": "conformance",
            "experimentId": run_id,
            "runId": run_id,
            "name": "accuracy",
            "appId": spare_app,
            "apiKeyId": spare_key["id"],
        },
        spare={"scoreId": scores[2]},
    )


def request_for(method: str, path: str, seed: Seed) -> dict[str, Any]:
    """The call that exercises one operation: path parameters from the seed, the
    query and body the reference requires."""
    params = dict(seed.params)
    if method == "DELETE":
        params.update(seed.spare)
    url = re.sub(r"\{(\w+)\}", lambda m: params[m[1]], path)
    management = path.startswith(("/v1/apps", "/v1/api-keys"))
    call: dict[str, Any] = {
        "method": method,
        "url": url,
        "headers": seed.session if management else seed.data,
    }
    query = {
        "/v1/metrics": {
            "start_date": f"{date.today() - timedelta(days=1)}",
            "end_date": f"{date.today() + timedelta(days=1)}",
        },
        "/v1/templates": {"path": "haiku.prompt.mdx"},
    }
    if path in query:
        call["params"] = query[path]
    trace, span = seed.params["traceId"], seed.params["spanId"]
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/v1/traces"): payloads.request(payloads.llm_trace(name="more")[1]),
        ("POST", "/v1/scores"): {"resource_id": trace, "name": "accuracy", "score": 1},
        ("POST", "/v1/scores/batch"): {
            "scores": [{"resource_id": trace, "name": "accuracy", "score": 0.5}]
        },
        ("POST", "/v1/datasets/{datasetName}/rows"): {
            "input": {"q": "more"},
            "expected_output": "x",
        },
        ("POST", "/v1/datasets/{datasetName}/rows/from-traces"): {"trace_ids": [trace]},
        ("POST", "/v1/datasets/{datasetName}/rows/from-spans"): {"span_ids": [span]},
        ("POST", "/v1/api-keys"): {"name": "conformance-made", "permissions": ["trace.read"]},
        ("POST", "/v1/apps"): {"name": "conformance-made"},
        ("PATCH", "/v1/apps/{appId}"): {"name": "conformance-renamed"},
    }
    if (method, path) in bodies:
        call["json"] = bodies[(method, path)]
    return call


def test_every_shared_operation_answers_as_the_reference_says_or_is_listed(gateway, seed):
    reference = Reference.load()
    ours = gateway.client.get("/v1/openapi.json").json()["paths"]
    gateway_operations = {
        (method.upper(), template(path))
        for path, item in ours.items()
        for method in item
        if method in METHODS
    }
    shared = sorted(
        (op for op in reference.operations() if (op[0], template(op[1])) in gateway_operations),
        key=lambda op: (op[0] == "DELETE", op[1].startswith("/v1/apps"), op),
    )
    assert len(shared) > 30, "the gateway's OpenAPI shares few operations with the reference"

    differing = {}
    for method, path in shared:
        response = gateway.client.request(**request_for(method, path, seed))
        problem = reference.problem(method, path, response.status_code, response.content)
        if problem:
            differing[(method, path)] = problem

    listed = listed_differences()
    unlisted = {f"{m} {p}": why for (m, p), why in differing.items() if (m, p) not in listed}
    stale = sorted(f"{m} {p}" for m, p in listed if (m, p) not in differing)
    assert not unlisted, "differences not in docs/compatibility.md:\n" + "\n".join(
        f"{op}: {why}" for op, why in unlisted.items()
    )
    assert not stale, f"listed in docs/compatibility.md but conforming now (or gone): {stale}"
