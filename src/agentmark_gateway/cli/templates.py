"""``agentmark-gateway templates push DIR``: publish a built AgentMark project, as a CI job would.

A client of the HTTP API (not of the database): it PUTs each file to
``/v1/templates`` on ``AGENTMARK_BASE_URL`` with ``AGENTMARK_API_KEY`` (a key
with template.write) and ``AGENTMARK_APP_ID``.

What it publishes, walking DIR in path order (hidden folders and
``node_modules`` are skipped):

- ``*.mdx.json``: a built template (the AST of ``*.mdx``), published at its
  path without ``.json``: ``agents/triage.prompt.mdx.json`` ->
  ``agents/triage.prompt.mdx``.
- ``*.prompt.json``: what ``agentmark build`` writes, ``{"ast": ..., "metadata":
  ...}``; its ``ast`` is published at ``*.prompt.mdx``, the path the loaders ask for.
- ``*.jsonl``: a dataset, published at its own path; it replaces that dataset's rows.
- ``agentmark.json`` at the top of DIR: the project configuration, published at
  ``agentmark.json`` (``GET /v1/config`` and ``/v1/score-configs`` read it).

Everything else (``.mdx`` sources, other JSON files) is left alone.

Each template and the configuration go with the commit they were built from
(``--commit-sha``, else ``AGENTMARK_COMMIT_SHA``, else ``git rev-parse HEAD`` of
DIR's work tree), which the gateway stamps into them (templates/stamp.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, NoReturn

import httpx
import typer

from agentmark_gateway import __version__
from agentmark_gateway.config.service import CONFIG_PATH
from agentmark_gateway.templates.paths import check_path
from agentmark_gateway.templates.stamp import check_commit_sha

app = typer.Typer(help="Publish built templates and datasets to a gateway.", no_args_is_help=True)

DEFAULT_BASE_URL = "http://localhost:9418"
SKIPPED_FOLDERS = {"node_modules"}
BUILT_TEMPLATE = ".mdx.json"
BUILD_OUTPUT = ".prompt.json"
DATASET = ".jsonl"


@dataclass(frozen=True)
class Item:
    """One file to publish and the path it is published at."""

    file: Path
    path: str
    kind: Literal["template", "dataset"]


def published_path(relative: str) -> tuple[str, Literal["template", "dataset"]] | None:
    """The path a file of DIR is published at, or None when it is not published."""
    if relative == CONFIG_PATH:
        return relative, "template"
    if relative.endswith(BUILT_TEMPLATE):
        return relative.removesuffix(".json"), "template"
    if relative.endswith(BUILD_OUTPUT):
        return relative.removesuffix(".json") + ".mdx", "template"
    if relative.endswith(DATASET):
        return relative, "dataset"
    return None


def collect(root: Path) -> list[Item]:
    items = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".") and d not in SKIPPED_FOLDERS
        )
        for name in sorted(files):
            file = Path(folder) / name
            target = published_path(file.relative_to(root).as_posix())
            if target is not None:
                items.append(Item(file, *target))
    return sorted(items, key=lambda item: item.path)


def _template_body(file: Path) -> bytes:
    try:
        content = json.loads(file.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    if not isinstance(content, dict):
        raise ValueError("a built template must be a JSON object")
    # `agentmark build` wraps the tree; the loaders want the tree itself.
    if "type" not in content and isinstance(content.get("ast"), dict):
        content = content["ast"]
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def _server_error(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['message']} ({response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code} {response.reason_phrase}".strip()


def git_head(directory: Path) -> str | None:
    """The commit checked out in the git work tree DIR is in; None when git is missing,
    DIR is in no work tree, or the repository has no commit yet."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603 (git from PATH, fixed arguments)
            [git, "-C", str(directory), "rev-parse", "--is-inside-work-tree", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) != 2 or lines[0] != "true":
        return None
    return lines[1]


def commit_of(directory: Path, option: str | None) -> tuple[str, str] | None:
    """The commit to stamp and where it came from, or None; exits on a malformed one."""
    env = os.environ.get("AGENTMARK_COMMIT_SHA", "").strip()
    if option is not None:
        found = (option.strip(), "--commit-sha")
    elif env:
        found = (env, "AGENTMARK_COMMIT_SHA")
    else:
        head = git_head(directory)
        if head is None:
            return None
        found = (head, f"git HEAD of {directory}")
    sha, source = found
    try:
        return check_commit_sha(sha), source
    except ValueError:
        _fail(f"{source}: '{sha}' is not a commit id (4 to 64 hexadecimal characters)")


def _publish(client: httpx.Client, item: Item, commit_sha: str | None) -> str:
    """Publishes one file; the word for the outcome, or ValueError with the reason it failed."""
    check_path(item.path)
    params = {"path": item.path}
    if item.kind == "template":
        body, content_type = _template_body(item.file), "application/json"
        if commit_sha is not None:
            params["commit_sha"] = commit_sha
    else:
        body, content_type = item.file.read_bytes(), "application/x-ndjson"
    response = client.put(
        "/v1/templates",
        params=params,
        content=body,
        headers={"Content-Type": content_type},
    )
    if response.status_code not in (200, 201):
        raise ValueError(_server_error(response))
    outcome = "created" if response.status_code == 201 else "updated"
    rows = response.json()["data"].get("row_count")
    return f"{outcome} {item.path}" + ("" if rows is None else f" ({rows} rows)")


@app.command("push")
def push(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, dir_okay=True, help="The build output to publish"
        ),
    ],
    base_url: Annotated[
        str, typer.Option(envvar="AGENTMARK_BASE_URL", help="The gateway to publish to")
    ] = DEFAULT_BASE_URL,
    app_id: Annotated[
        str | None, typer.Option(envvar="AGENTMARK_APP_ID", help="The app to publish into")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be published, send nothing")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for each request")] = 60,
    commit_sha: Annotated[
        str | None,
        typer.Option(
            "--commit-sha",
            metavar="SHA",
            help="The commit the templates were built from (4 to 64 hex characters), stamped "
            "into each template's frontmatter as agentmark_meta.commit_sha and kept with "
            "agentmark.json. Default: AGENTMARK_COMMIT_SHA, else `git rev-parse HEAD` when DIR "
            "is in a git work tree (HEAD even when the tree has uncommitted changes), else none.",
        ),
    ] = None,
) -> None:
    """Publish built templates (*.mdx.json, *.prompt.json), datasets (*.jsonl) and the
    project's agentmark.json in DIR.

    The key comes from AGENTMARK_API_KEY only (never an option: it would show in
    process lists and shell history) and needs template.write.
    """
    items = collect(directory)
    if not items:
        _fail(f"nothing to publish in {directory}: no *.mdx.json, *.prompt.json or *.jsonl files")
    _check_unique(items)
    commit = commit_of(directory, commit_sha)
    if commit is not None:
        typer.echo(f"commit {commit[0]} (from {commit[1]})")
    if dry_run:
        for item in items:
            typer.echo(f"would publish {item.path}  <- {item.file.relative_to(directory)}")
        return
    api_key = os.environ.get("AGENTMARK_API_KEY", "").strip()
    if not api_key:
        _fail("set AGENTMARK_API_KEY to a key of the app with template.write")
    if not app_id:
        _fail("set AGENTMARK_APP_ID (or --app-id) to the app to publish into")

    headers = {
        "Authorization": f"Bearer {api_key}",
        "X-Agentmark-App-Id": app_id,
        "User-Agent": f"agentmark-gateway/{__version__}",
    }
    failed = 0
    with httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout) as client:
        for item in items:
            try:
                typer.echo(_publish(client, item, None if commit is None else commit[0]))
            except (ValueError, OSError) as exc:
                failed += 1
                typer.echo(f"failed {item.path}: {exc}")
            except httpx.HTTPError as exc:
                typer.echo(f"failed {item.path}: {type(exc).__name__}: {exc}")
                _fail(f"cannot reach the gateway at {base_url}; stopped")
    typer.echo(f"{len(items) - failed} published, {failed} failed")
    if failed:
        raise typer.Exit(1)


def _check_unique(items: list[Item]) -> None:
    seen: dict[str, Path] = {}
    for item in items:
        if item.path in seen:
            _fail(f"{item.file} and {seen[item.path]} would both publish {item.path}")
        seen[item.path] = item.file


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)
