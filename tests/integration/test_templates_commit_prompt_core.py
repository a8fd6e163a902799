"""A prompt stamped with its commit still loads and formats with the current
TypeScript prompt-core (``ApiLoader``), and the commit reads back from its
frontmatter as the webhook runner reads it (``tests/fixtures/ts/commit_stamp.mjs``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_gateway import FIXTURES, LiveGateway, live_gateway, run_node, shared_path

pytestmark = pytest.mark.slow

SCRIPT = FIXTURES / "ts" / "commit_stamp.mjs"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, template_database: str
) -> Iterator[LiveGateway]:
    with live_gateway(tmp_path_factory, template_database) as live:
        yield live


def test_a_stamped_prompt_formats_and_its_commit_reads_back(gateway):
    app_id = gateway.admin.create_app("shop")
    key = gateway.admin.create_key(app_id, role="full-access")
    headers = {"Authorization": key["plaintext_key"], "X-Agentmark-App-Id": app_id}
    response = gateway.client.put(
        "/v1/templates",
        params={"path": "haiku.prompt.mdx", "commit_sha": SHA},
        content=(FIXTURES / "agentmark" / "haiku.prompt.mdx.json").read_bytes(),
        headers=headers,
    )
    assert response.status_code == 201, response.text

    run = run_node(
        SCRIPT,
        "haiku.prompt.mdx",
        env={
            "AGENTMARK_TS_CLIENTS": str(shared_path("clients", "agentmark-ts")),
            "AGENTMARK_BASE_URL": gateway.base,
            "AGENTMARK_APP_ID": app_id,
            "AGENTMARK_API_KEY": key["plaintext_key"],
        },
    )

    result = run.result
    assert "error" not in result, result
    assert result["commitSha"] == SHA
    assert "Write a haiku about autumn." in str(result["formatted"])
