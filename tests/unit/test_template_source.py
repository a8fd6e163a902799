"""A built template read back as MDX for the dashboard (templates/source.py)."""

from __future__ import annotations

import json
from pathlib import Path

from agentmark_gateway.templates.source import MAX_DEPTH, frontmatter_text, source_text

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agentmark"


def test_a_built_prompt_reads_back_as_the_mdx_it_came_from():
    built = json.loads((FIXTURES / "haiku.prompt.mdx.json").read_text())
    written = (FIXTURES / "haiku.prompt.mdx").read_text()
    front, _, body = written.removeprefix("---\n").partition("\n---\n")
    assert frontmatter_text(built) == front
    assert source_text(built) == body.strip() + "\n"


def test_lists_headings_code_and_attributes_are_written_as_markdown():
    tree = {
        "type": "root",
        "children": [
            {"type": "heading", "depth": 2, "children": [{"type": "text", "value": "Rules"}]},
            {
                "type": "list",
                "ordered": True,
                "children": [
                    {"type": "listItem", "children": [{"type": "text", "value": "be brief"}]},
                    {"type": "listItem", "children": [{"type": "inlineCode", "value": "x"}]},
                ],
            },
            {"type": "code", "lang": "json", "value": "{}"},
            {
                "type": "mdxJsxFlowElement",
                "name": "If",
                "attributes": [
                    {
                        "type": "mdxJsxAttribute",
                        "name": "condition",
                        "value": {"type": "mdxJsxAttributeValueExpression", "value": "props.x"},
                    },
                    {"type": "mdxJsxAttribute", "name": "label", "value": "a"},
                ],
                "children": [],
            },
            {"type": "someFutureNode", "children": [{"type": "text", "value": "kept"}]},
        ],
    }
    assert source_text(tree) == (
        "## Rules\n\n1. be brief\n2. `x`\n\n```json\n{}\n```\n\n"
        '<If condition={props.x} label="a" />\n\nkept\n'
    )


def test_a_tree_deeper_than_the_bound_is_cut_not_a_crash():
    node: dict = {"type": "text", "value": "bottom"}
    for _ in range(MAX_DEPTH * 20):
        node = {"type": "mdxJsxFlowElement", "name": "A", "children": [node]}
    text = source_text({"type": "root", "children": [node]})
    assert "…" in text and "bottom" not in text


def test_a_json_template_or_odd_content_is_shown_as_json():
    assert frontmatter_text({"not": "a tree"}) is None
    assert json.loads(source_text({"children": "nope"})) == {"children": "nope"}
