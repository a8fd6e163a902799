"""The published ``agentmark-prompt-core`` ApiLoader reads templates and datasets unchanged.

The package needs Python 3.12, so it runs in a 3.12 interpreter of its own
(pyenv's, or ``python3.12`` on PATH) with the package installed into a
temporary folder, against a real server. Outside CI the test skips, saying why,
when there is no such interpreter or the package cannot be installed.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.test_push_cli import server  # noqa: F401  (the live-server fixture)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agentmark"
PROMPT_CORE = "agentmark-prompt-core>=0.12,<0.13"

CLIENT = """
import asyncio, json
from agentmark.prompt_core import ApiLoader, create_agentmark

def plain(value):
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else str(value)

async def main():
    loader = ApiLoader.cloud()  # AGENTMARK_BASE_URL, AGENTMARK_API_KEY, AGENTMARK_APP_ID
    raw = await loader.load("haiku.prompt.mdx", "text")
    prompt = await create_agentmark(loader=loader).load_text_prompt("haiku.prompt.mdx")
    formatted = await prompt.format(props={"season": "autumn"})
    reader = (await prompt.format_with_dataset()).get_reader()
    items = []
    while not (chunk := await reader.read())["done"]:
        items.append(chunk["value"])
    try:
        await loader.load("missing.prompt.mdx", "text")
        missing = None
    except ValueError as exc:
        missing = str(exc)
    print(json.dumps({"raw": raw, "formatted": formatted, "items": items, "missing": missing},
                     default=plain))

asyncio.run(main())
"""


def _python312() -> str | None:
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = sorted(glob.glob(f"{root}/versions/3.12.*/bin/python3.12"), reverse=True)
    if on_path := shutil.which("python3.12"):
        candidates.append(on_path)
    for candidate in candidates:
        # pyenv's shim exists on PATH but refuses while another version is global.
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def prompt_core(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """A Python 3.12 and a folder holding agentmark-prompt-core and its dependencies."""
    python = _python312()
    if python is None:
        _unavailable("no Python 3.12 (pyenv versions/3.12.* or python3.12 on PATH)")
    assert python is not None
    target = tmp_path_factory.mktemp("prompt-core")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--target", str(target), PROMPT_CORE],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if install.returncode != 0:
        _unavailable(f"could not install {PROMPT_CORE}: {install.stderr.strip()[-500:]}")
    return python, target


@pytest.mark.slow
def test_the_api_loader_formats_a_published_prompt_over_its_published_dataset(
    prompt_core,
    server,  # noqa: F811
    admin,
    client,
    key_headers,
    tmp_path,
):
    python, target = prompt_core
    app_id = admin.create_app("shop")
    publisher = key_headers(admin.create_key(app_id, role="full-access"))
    ast = json.loads((FIXTURES / "haiku.prompt.mdx.json").read_text())
    client.put("/v1/templates", params={"path": "haiku.prompt.mdx"}, json=ast, headers=publisher)
    dataset = (FIXTURES / "datasets" / "seasons.jsonl").read_bytes()
    client.put(
        "/v1/templates",
        params={"path": "datasets/seasons.jsonl"},
        content=dataset,
        headers=publisher,
    )
    sdk = admin.create_key(app_id, role="sdk")  # what an app would hold: template.read
    script = tmp_path / "client.py"
    script.write_text(CLIENT)

    done = subprocess.run(
        [python, str(script)],
        env={
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(target),
            "AGENTMARK_BASE_URL": server,
            "AGENTMARK_API_KEY": sdk["plaintext_key"],
            "AGENTMARK_APP_ID": app_id,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    assert result["raw"] == ast
    assert "Write a haiku about autumn." in json.dumps(result["formatted"])
    rows = [json.loads(line) for line in dataset.splitlines()]
    assert [item["type"] for item in result["items"]] == ["dataset"] * len(rows)
    assert [item["dataset"]["input"] for item in result["items"]] == [r["input"] for r in rows]
    assert [item["dataset"]["expected_output"] for item in result["items"]] == [
        r.get("expected_output") for r in rows
    ]
    assert "Write a haiku about spring." in json.dumps(result["items"][0]["formatted"])
    assert "404" in result["missing"]
