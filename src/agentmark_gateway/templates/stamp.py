"""The commit a template was built from, stamped into what is stored and served.

AgentMark's own servers add ``agentmark_meta: {commit_sha}`` to the frontmatter
of every prompt they serve; prompt-core's runners copy it to their spans as
``agentmark.metadata.commit_sha``, where experiments find their ``commitSha``.
Here the commit comes with the publish (``PUT /v1/templates?commit_sha=``, sent
by ``agentmark-gateway templates push``) and is stamped once, into the stored
document, so every answer serves it and the answer cache needs nothing new.

- A prompt (an AST whose root has a ``yaml`` frontmatter node): its YAML gets an
  ``agentmark_meta`` block holding only ``commit_sha``, replacing any earlier one.
  The block is appended to the YAML as written, so the author's text (comments,
  order, quoting) stays as it was. Re-dumping parsed YAML would lose that, and
  PyYAML's YAML 1.1 reading of ``yes``/``no``/``on`` would turn strings that
  prompt-core's YAML 1.2 reader sees as text into booleans. Only a frontmatter
  laid out so that cutting the old block out cannot work (a flow mapping, a
  quoted key) has the rest written anew from its parsed value.
- ``agentmark.json``: a top-level ``agentmark_meta`` member, which
  ``GET /v1/config`` and ``/v1/score-configs`` report as ``commit_sha`` and leave
  out of the configuration.
- An AST without frontmatter, or with one that is not a YAML mapping, is stored
  as sent (no loader could read its frontmatter anyway); datasets are rows, not
  documents, and are never stamped.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from pydantic_core import PydanticCustomError

from agentmark_gateway.templates.frontmatter import frontmatter_node

META_KEY = "agentmark_meta"
COMMIT_SHA = re.compile(r"[0-9a-fA-F]{4,64}")
_META_LINE = re.compile(rf"{META_KEY}\s*:")


def check_commit_sha(value: str) -> str:
    """The commit id lowercased, or ``ValueError`` (pydantic's, for a clear 400)."""
    if not COMMIT_SHA.fullmatch(value):
        raise PydanticCustomError(
            "invalid_commit_sha",
            "{message}",
            {"message": "commit_sha must be 4 to 64 hexadecimal characters (a git commit id)"},
        )
    return value.lower()


def stamp(content: dict[str, Any], *, config: bool, commit_sha: str) -> None:
    """Stamps ``commit_sha`` into a template's frontmatter, or into ``agentmark.json``
    when ``config``, in place."""
    if config:
        content[META_KEY] = {"commit_sha": commit_sha}
        return
    node = frontmatter_node(content)
    if node is not None and isinstance(node.get("value"), str):
        stamped = stamped_yaml(node["value"], commit_sha)
        if stamped is not None:
            node["value"] = stamped


def config_commit(content: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A stored ``agentmark.json`` split into the configuration and its commit (None
    when it was published without one)."""
    config = {key: value for key, value in content.items() if key != META_KEY}
    meta = content.get(META_KEY)
    sha = meta.get("commit_sha") if isinstance(meta, dict) else None
    return config, sha if isinstance(sha, str) and COMMIT_SHA.fullmatch(sha) else None


def stamped_yaml(text: str, commit_sha: str) -> str | None:
    """``text`` with its ``agentmark_meta`` replaced by one holding ``commit_sha``;
    None when ``text`` is not a YAML mapping."""
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):  # PyYAML recurses once per nesting level
        return None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return None
    others = {key: value for key, value in data.items() if key != META_KEY}
    rest = _without_meta_block(text).rstrip()
    if not _reads_as(rest, others):
        rest = (
            yaml.safe_dump(others, sort_keys=False, allow_unicode=True).rstrip() if others else ""
        )
    # Quoted: an id such as 1234567 or 1e10 would otherwise read as a number.
    block = f'{META_KEY}:\n  commit_sha: "{commit_sha}"'
    return f"{rest}\n{block}" if rest else block


def _without_meta_block(text: str) -> str:
    """``text`` without its top-level ``agentmark_meta:`` lines and their indented body."""
    kept: list[str] = []
    inside = False
    for line in text.splitlines():
        if _META_LINE.match(line):
            inside = True
            continue
        if inside and (not line.strip() or line[0] in " \t"):
            continue
        inside = False
        kept.append(line)
    return "\n".join(kept)


def _reads_as(text: str, expected: dict[str, Any]) -> bool:
    # Equal to the mapping without agentmark_meta: no other spelling of the key is left
    # (a YAML 1.2 reader refuses a duplicate key), and nothing else moved.
    try:
        return (yaml.safe_load(text) or {}) == expected
    except (yaml.YAMLError, RecursionError):
        return False
