"""A built template read back as the MDX it came from, near enough to read.

The gateway stores what ``agentmark build`` made: an mdast tree, not the text.
The dashboard shows a prompt as a person wrote it, so this walks the tree back
into MDX: JSX elements as tags, expressions in braces, paragraphs, headings,
lists and code. Node types it does not know show their children's text, so
nothing written in a prompt is dropped. Depth is bounded: a hostile tree cannot
exhaust the stack.
"""

from __future__ import annotations

import json
from typing import Any

from agentmark_gateway.templates.frontmatter import frontmatter_node

MAX_DEPTH = 100
_BLOCKS = {"paragraph", "heading", "mdxJsxFlowElement", "list", "code", "blockquote", "html"}


def frontmatter_text(content: dict[str, Any]) -> str | None:
    """The YAML frontmatter as written, or None."""
    node = frontmatter_node(content)
    value = None if node is None else node.get("value")
    return value if isinstance(value, str) else None


def source_text(content: dict[str, Any]) -> str:
    """The template's body (after the frontmatter) as MDX."""
    root = content.get("ast") if isinstance(content.get("ast"), dict) else content
    children = root.get("children") if isinstance(root, dict) else None
    if not isinstance(children, list):
        return json.dumps(content, indent=2, ensure_ascii=False)
    body = [
        child for child in children if not (isinstance(child, dict) and child.get("type") == "yaml")
    ]
    return _blocks(body, 0).strip() + "\n"


def _blocks(nodes: list[Any], depth: int) -> str:
    return "\n\n".join(text for text in (_node(node, depth) for node in nodes) if text)


def _inline(nodes: Any, depth: int) -> str:
    if not isinstance(nodes, list):
        return ""
    return "".join(_node(node, depth) for node in nodes)


def _attributes(node: dict[str, Any]) -> str:
    parts = []
    for attribute in node.get("attributes") or []:
        if not isinstance(attribute, dict):
            continue
        name, value = attribute.get("name"), attribute.get("value")
        if attribute.get("type") == "mdxJsxExpressionAttribute":
            parts.append(f"{{{attribute.get('value', '')}}}")
        elif value is None:
            parts.append(str(name))
        elif isinstance(value, dict):  # an expression value: name={...}
            parts.append(f"{name}={{{value.get('value', '')}}}")
        else:
            parts.append(f'{name}="{value}"')
    return "".join(f" {part}" for part in parts)


def _node(node: Any, depth: int) -> str:
    if not isinstance(node, dict):
        return ""
    if depth > MAX_DEPTH:
        return "…"
    kind = node.get("type")
    value = node.get("value")
    children = node.get("children")
    below = depth + 1
    if kind in ("text", "html"):
        return str(value or "")
    if kind in ("mdxTextExpression", "mdxFlowExpression"):
        return f"{{{value or ''}}}"
    if kind == "inlineCode":
        return f"`{value or ''}`"
    if kind == "code":
        return f"```{node.get('lang') or ''}\n{value or ''}\n```"
    if kind == "break":
        return "\n"
    if kind == "heading":
        return "#" * int(node.get("depth") or 1) + " " + _inline(children, below)
    if kind in ("emphasis", "strong"):
        mark = "*" if kind == "emphasis" else "**"
        return mark + _inline(children, below) + mark
    if kind == "list":
        ordered = bool(node.get("ordered"))
        items = [child for child in children or [] if isinstance(child, dict)]
        return "\n".join(
            f"{f'{n}.' if ordered else '-'} {_blocks(item.get('children') or [], below)}"
            for n, item in enumerate(items, start=1)
        )
    if kind in ("mdxJsxFlowElement", "mdxJsxTextElement"):
        name = node.get("name") or ""
        opening = f"<{name}{_attributes(node)}"
        if not children:
            return opening + " />"
        if kind == "mdxJsxTextElement":
            return f"{opening}>{_inline(children, below)}</{name}>"
        return f"{opening}>\n{_blocks(children, below)}\n</{name}>"
    if isinstance(children, list):
        has_blocks = any(isinstance(c, dict) and c.get("type") in _BLOCKS for c in children)
        return _blocks(children, below) if has_blocks else _inline(children, below)
    return "" if value is None else str(value)
