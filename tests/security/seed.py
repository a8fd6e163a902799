"""An app full of data, seeded through the public API as its own SDK, CLI and CI would.

Every name an app's data carries contains its tag (``alpha``, ``bravo``), so a
test can prove another app's key never sees it by looking for the tag in the
answer's text, whatever the route's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

from tests.fixtures.otlp import payloads

DAY = "2025-05-01"


@dataclass
class Seeded:
    """What one app holds, by id and name."""

    tag: str
    app_id: str
    key: str
    trace_ids: list[str] = field(default_factory=list)
    span_ids: list[str] = field(default_factory=list)
    session_id: str = ""
    user_id: str = ""
    score_id: str = ""
    score_name: str = ""
    template_path: str = ""
    prompt_name: str = ""
    dataset: str = ""
    experiment_id: str = ""
    experiment_key: str = ""
    input_tokens: int = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.key, "X-Agentmark-App-Id": self.app_id}

    @property
    def ids(self) -> list[str]:
        """Every random id this app's data has (names carry the tag instead)."""
        return [*self.trace_ids, *self.span_ids, self.score_id, self.experiment_id]


def _ok(response: Any, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response.json() if response.content else None


def seed_app(client: TestClient, app_id: str, key: str, tag: str, *, traces: int = 1) -> Seeded:
    """``traces`` model-call traces in one session, a score, a template, a dataset and a run.

    The traces are the rows of the run (``run-<tag>``), marked as ``runExperiment``
    marks them, and the score is its first row's.
    """
    app = Seeded(tag=tag, app_id=app_id, key=key)
    app.session_id, app.user_id = f"session-{tag}", f"user-{tag}"
    app.experiment_id, app.experiment_key = f"run-{tag}", f"key-{tag}"
    for n in range(traces):
        trace_id, spans = payloads.llm_trace(
            name=f"answer-{tag}",
            start_ns=payloads.at(f"{DAY}T1{n}:00:00Z"),
            user_id=app.user_id,
            session_id=app.session_id,
            session_name=f"Chat {tag}",
            tags=[f"tag-{tag}"],
            model=f"model-{tag}",
            input_tokens=100 * (n + 1),
            output_tokens=10,
            dataset_run_id=app.experiment_id,
        )
        # Dataset imports read a trace's input and output from its root span.
        spans[0]["attributes"] += payloads.attributes(
            {
                "agentmark.request.input": f'{{"question":"ask-{tag}"}}',
                "agentmark.response.output": f"said-{tag}",
                "agentmark.dataset_run_name": f"run-{tag}",
                "agentmark.dataset_item_name": str(n),
                "agentmark.dataset_path": f"data-{tag}.jsonl",
                "agentmark.dataset_input": f'{{"question":"row-{tag}-{n}"}}',
                "agentmark.experiment_key": app.experiment_key,
                "agentmark.source_tree_hash": f"tree-{tag}",
            }
        )
        payloads.post(client, app.headers, spans)
        app.trace_ids.append(trace_id)
        app.span_ids.extend(span["spanId"] for span in spans)
        app.input_tokens += 100 * (n + 1)

    app.score_name = f"score-{tag}"
    app.score_id = _ok(
        client.post(
            "/v1/scores",
            json={
                "resource_id": app.trace_ids[0],
                "name": app.score_name,
                "score": 1,
                "label": f"label-{tag}",
            },
            headers=app.headers,
        )
    )["data"]["id"]

    app.template_path, app.prompt_name = f"prompts/{tag}.prompt.mdx", f"prompt-{tag}"
    ast = {"type": "root", "children": [{"type": "yaml", "value": f"name: {app.prompt_name}"}]}
    _ok(
        client.put(
            "/v1/templates", params={"path": app.template_path}, json=ast, headers=app.headers
        )
    )

    app.dataset = f"data-{tag}"
    _ok(
        client.post(
            f"/v1/datasets/{app.dataset}/rows",
            json={"input": {"question": f"row-{tag}"}, "expected_output": f"answer-{tag}"},
            headers=app.headers,
        )
    )

    return app
