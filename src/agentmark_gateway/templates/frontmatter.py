"""The prompt's ``name`` from a built template's YAML frontmatter.

A built template is an mdast tree whose first child is usually ``{"type":
"yaml", "value": "name: math\\n..."}``. ``GET /v1/prompts?name=`` maps a span's
prompt name back to the template's path, so the name is read once, when the
template is published, and kept in its own column.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NAME_LENGTH = 255


def prompt_name(content: dict[str, Any]) -> str | None:
    """The frontmatter's top-level ``name`` when it is a short string, else None."""
    node = frontmatter_node(content)
    return None if node is None else _name_in(node.get("value"))


def frontmatter_node(content: dict[str, Any]) -> dict[str, Any] | None:
    """The root's first ``yaml`` child (where prompt-core reads the frontmatter), or None."""
    # ``agentmark build`` wraps the tree as {"ast": ..., "metadata": ...}; accept both.
    root = content.get("ast") if isinstance(content.get("ast"), dict) else content
    children = root.get("children") if isinstance(root, dict) else None
    if not isinstance(children, list):
        return None
    for child in children:
        if isinstance(child, dict) and child.get("type") == "yaml":
            return child
    return None


def _name_in(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):  # PyYAML recurses once per nesting level
        return None
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str) and 0 < len(name) <= MAX_NAME_LENGTH and "\x00" not in name:
        return name
    return None
