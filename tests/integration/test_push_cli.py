"""``agentmark-gateway templates push DIR`` against a real server on a free port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
import yaml
from typer.testing import CliRunner

from agentmark_gateway.app import create_app
from agentmark_gateway.cli.main import app as cli_app
from agentmark_gateway.settings import Settings
from tests.conftest import altered

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agentmark"
runner = CliRunner()


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    """A uvicorn server in a thread, on the test's database, listening on a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings), log_level="warning", lifespan="on", ws="none", access_log=False
    )
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(20)
    sock.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """Our fixture project, plus things push must leave alone."""
    root = tmp_path / "project"
    # The three files these tests name; the other fixtures serve the client tests.
    shutil.copytree(FIXTURES, root, ignore=shutil.ignore_patterns("media", "arithmetic.jsonl"))
    (root / "package.json").write_text('{"name": "not-a-template"}')
    (root / ".cache").mkdir()
    (root / ".cache" / "stale.prompt.mdx.json").write_text("{}")
    (root / "node_modules" / "dep").mkdir(parents=True)
    (root / "node_modules" / "dep" / "data.jsonl").write_text('{"input": {}}\n')
    return root


@pytest.fixture
def publisher(admin, key_headers):
    app_id = admin.create_app("shop")
    key = admin.create_key(app_id, permissions=["template.read", "template.write"])
    return key


def push(directory: Path, *, base_url: str | None, key: dict | None, extra=(), commit=None):
    env = {
        "AGENTMARK_API_KEY": None,
        "AGENTMARK_APP_ID": None,
        "AGENTMARK_BASE_URL": None,
        "AGENTMARK_COMMIT_SHA": commit,
    }
    if key is not None:
        env.update(AGENTMARK_API_KEY=key["plaintext_key"], AGENTMARK_APP_ID=key["app_id"])
    if base_url is not None:
        env["AGENTMARK_BASE_URL"] = base_url
    return runner.invoke(cli_app, ["templates", "push", str(directory), *extra], env=env)


def read(client, key_headers, key, path):
    response = client.get("/v1/templates", params={"path": path}, headers=key_headers(key))
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_push_publishes_built_templates_and_datasets(
    server, project, publisher, client, key_headers
):
    result = push(project, base_url=server, key=publisher)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "created agents/triage.prompt.mdx",
        "created datasets/seasons.jsonl (3 rows)",
        "created haiku.prompt.mdx",
        "3 published, 0 failed",
    ]
    assert publisher["plaintext_key"] not in result.output

    built = json.loads((FIXTURES / "haiku.prompt.mdx.json").read_text())
    assert read(client, key_headers, publisher, "haiku.prompt.mdx") == built
    rows = [json.loads(line) for line in (FIXTURES / "datasets" / "seasons.jsonl").open()]
    assert read(client, key_headers, publisher, "datasets/seasons.jsonl") == rows

    again = push(project, base_url=server, key=publisher)
    assert again.exit_code == 0
    assert again.output.splitlines()[0] == "updated agents/triage.prompt.mdx"


def test_push_publishes_agentmark_build_output_at_its_mdx_path(
    server, tmp_path, publisher, client, key_headers
):
    ast = json.loads((FIXTURES / "haiku.prompt.mdx.json").read_text())
    (tmp_path / "dist").mkdir()
    wrapped = {"ast": ast, "metadata": {"kind": "text", "name": "haiku"}}
    (tmp_path / "dist" / "haiku.prompt.json").write_text(json.dumps(wrapped))
    result = push(tmp_path / "dist", base_url=server, key=publisher)
    assert result.exit_code == 0, result.output
    assert "created haiku.prompt.mdx" in result.output
    assert read(client, key_headers, publisher, "haiku.prompt.mdx") == ast


def test_a_bad_file_fails_alone_with_the_servers_message_and_exit_1(
    server, project, publisher, client, key_headers
):
    (project / "broken.jsonl").write_text('{"input": {"a": 1}}\n{"expected_output": 2}\n')
    (project / "notjson.prompt.mdx.json").write_text("{oops")
    result = push(project, base_url=server, key=publisher)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert "failed broken.jsonl: Line 2: input: Field required (400 invalid_request_body)" in lines
    assert any(line.startswith("failed notjson.prompt.mdx: not valid JSON") for line in lines)
    assert lines[-1] == "3 published, 2 failed"
    assert read(client, key_headers, publisher, "haiku.prompt.mdx")


def test_a_key_without_template_write_fails_every_file_and_is_never_echoed(
    server, project, admin, publisher
):
    reader = admin.create_key(publisher["app_id"], role="sdk")
    result = push(project, base_url=server, key=reader)
    assert result.exit_code == 1
    assert (
        "failed haiku.prompt.mdx: Forbidden: missing required permission 'template.write' "
        "(403 forbidden)" in result.output
    )
    assert "0 published, 3 failed" in result.output
    assert reader["plaintext_key"] not in result.output
    assert reader["plaintext_key"][13:] not in result.output


def test_an_unknown_key_is_reported_as_not_authorized(server, project, publisher):
    forged = {**publisher, "plaintext_key": altered(publisher["plaintext_key"])}
    result = push(project, base_url=server, key=forged)
    assert result.exit_code == 1
    assert "Not authorized (401 unauthorized)" in result.output
    assert forged["plaintext_key"] not in result.output


def test_push_without_a_key_or_app_exits_with_a_clear_message(server, project, publisher):
    result = push(project, base_url=server, key=None)
    assert result.exit_code == 1
    assert "AGENTMARK_API_KEY" in result.output
    only_key = runner.invoke(
        cli_app,
        ["templates", "push", str(project)],
        env={"AGENTMARK_API_KEY": publisher["plaintext_key"], "AGENTMARK_APP_ID": None},
    )
    assert only_key.exit_code == 1
    assert "AGENTMARK_APP_ID" in only_key.output
    assert publisher["plaintext_key"] not in only_key.output


def test_an_unreachable_gateway_stops_the_push(project, publisher):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here now
    result = push(project, base_url=f"http://127.0.0.1:{port}", key=publisher)
    assert result.exit_code == 1
    assert "cannot reach the gateway" in result.output
    assert publisher["plaintext_key"] not in result.output


def test_a_directory_with_nothing_to_publish_fails(tmp_path, publisher):
    (tmp_path / "source.prompt.mdx").write_text("---\nname: x\n---\n")
    result = push(tmp_path, base_url="http://127.0.0.1:9", key=publisher)
    assert result.exit_code == 1
    assert "nothing to publish" in result.output


def test_two_files_for_one_path_are_refused_before_anything_is_sent(tmp_path, publisher):
    (tmp_path / "x.prompt.mdx.json").write_text("{}")
    (tmp_path / "x.prompt.json").write_text("{}")
    result = push(tmp_path, base_url="http://127.0.0.1:9", key=publisher)
    assert result.exit_code == 1
    assert "would both publish x.prompt.mdx" in result.output


def test_dry_run_lists_what_would_be_published(project):
    result = push(project, base_url=None, key=None, extra=["--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "would publish agents/triage.prompt.mdx  <- agents/triage.prompt.mdx.json",
        "would publish datasets/seasons.jsonl  <- datasets/seasons.jsonl",
        "would publish haiku.prompt.mdx  <- haiku.prompt.mdx.json",
    ]


def test_the_installed_command_pushes_as_a_ci_job_would(server, project, publisher):
    env = {
        **os.environ,
        "AGENTMARK_BASE_URL": server,
        "AGENTMARK_API_KEY": publisher["plaintext_key"],
        "AGENTMARK_APP_ID": publisher["app_id"],
    }
    done = subprocess.run(
        [sys.executable, "-m", "agentmark_gateway", "templates", "push", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "3 published, 0 failed"
    assert publisher["plaintext_key"] not in done.stdout + done.stderr


def test_push_publishes_the_projects_agentmark_json_as_its_config(
    server, tmp_path, publisher, client, key_headers
):
    config = {"agentmarkPath": ".", "scores": {"exact": {"type": "boolean"}}}
    shutil.copy(FIXTURES / "haiku.prompt.mdx.json", tmp_path / "haiku.prompt.mdx.json")
    (tmp_path / "agentmark.json").write_text(json.dumps(config))
    (tmp_path / "vendor").mkdir()
    (tmp_path / "vendor" / "agentmark.json").write_text("{}")  # only the top one is the project's

    result = push(tmp_path, base_url=server, key=publisher)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "created agentmark.json",
        "created haiku.prompt.mdx",
        "2 published, 0 failed",
    ]
    response = client.get("/v1/config", headers=key_headers(publisher))
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"commit_sha": None, "config": config}


def served_commit(client, key_headers, key, path) -> str:
    frontmatter = read(client, key_headers, key, path)["children"][0]["value"]
    return yaml.safe_load(frontmatter)["agentmark_meta"]["commit_sha"]


def git(directory: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-C",
            str(directory),
            "-c",
            "user.name=ci",
            "-c",
            "user.email=ci@example.com",
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.strip()


def test_push_stamps_the_commit_given_into_templates_and_the_config(
    server, project, publisher, client, key_headers
):
    sha = "0123456789abcdef0123456789abcdef01234567"
    (project / "agentmark.json").write_text('{"agentmarkPath": "."}')

    result = push(project, base_url=server, key=publisher, extra=["--commit-sha", sha.upper()])

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"commit {sha} (from --commit-sha)"
    assert served_commit(client, key_headers, publisher, "haiku.prompt.mdx") == sha
    assert served_commit(client, key_headers, publisher, "agents/triage.prompt.mdx") == sha
    config = client.get("/v1/config", headers=key_headers(publisher)).json()["data"]
    assert config == {"commit_sha": sha, "config": {"agentmarkPath": "."}}
    rows = [json.loads(line) for line in (FIXTURES / "datasets" / "seasons.jsonl").open()]
    assert read(client, key_headers, publisher, "datasets/seasons.jsonl") == rows


def test_push_stamps_the_head_of_the_git_work_tree_the_project_is_in(
    server, project, publisher, client, key_headers
):
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "prompts")
    head = git(project, "rev-parse", "HEAD")
    (project / "haiku.prompt.mdx").write_text("changed, not committed")  # still HEAD's commit

    result = push(project / "agents", base_url=server, key=publisher)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"commit {head} (from git HEAD of {project / 'agents'})"
    assert served_commit(client, key_headers, publisher, "triage.prompt.mdx") == head


def test_the_environment_names_the_commit_when_no_option_does(project):
    result = push(project, base_url=None, key=None, extra=["--dry-run"], commit="ABCD1234")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "commit abcd1234 (from AGENTMARK_COMMIT_SHA)"


@pytest.mark.parametrize(
    ("extra", "commit", "source"),
    [(["--commit-sha", "main"], None, "--commit-sha"), ((), "v1.2", "AGENTMARK_COMMIT_SHA")],
)
def test_a_malformed_commit_is_refused_before_anything_is_sent(
    server, project, publisher, client, key_headers, extra, commit, source
):
    result = push(project, base_url=server, key=publisher, extra=extra, commit=commit)

    assert result.exit_code == 1
    assert f"error: {source}: " in result.output
    assert "is not a commit id (4 to 64 hexadecimal characters)" in result.output
    missing = client.get(
        "/v1/templates", params={"path": "haiku.prompt.mdx"}, headers=key_headers(publisher)
    )
    assert missing.status_code == 404
