"""The commit stamp in a frontmatter's YAML: the author's text kept, one ``agentmark_meta``."""

from __future__ import annotations

import pytest
import yaml

from agentmark_gateway.templates.stamp import check_commit_sha, stamp, stamped_yaml

BLOCK = 'agentmark_meta:\n  commit_sha: "abcd1234"'


def test_the_block_is_appended_to_the_yaml_as_written():
    text = "# the prompt\nname: haiku\nflag: no  # a string to YAML 1.2 readers\n"
    assert stamped_yaml(text, "abcd1234") == f"{text.rstrip()}\n{BLOCK}"


def test_an_earlier_stamp_is_replaced_not_merged():
    text = "agentmark_meta:\n  commit_sha: old\n  note: 1\nname: haiku"
    assert stamped_yaml(text, "abcd1234") == f"name: haiku\n{BLOCK}"


def test_a_flow_mapping_is_written_anew_with_one_stamp():
    stamped = stamped_yaml("{name: haiku, agentmark_meta: {commit_sha: old}}", "1e10")
    assert stamped is not None
    assert yaml.safe_load(stamped) == {"name": "haiku", "agentmark_meta": {"commit_sha": "1e10"}}
    assert stamped.count("agentmark_meta") == 1


def test_an_empty_frontmatter_gets_only_the_stamp():
    assert stamped_yaml("", "abcd1234") == BLOCK


@pytest.mark.parametrize("text", ["- a list", "just text", "name: [unclosed", "a: " + "[" * 5000])
def test_a_frontmatter_that_is_no_mapping_is_left_alone(text):
    assert stamped_yaml(text, "abcd1234") is None
    ast = {"type": "root", "children": [{"type": "yaml", "value": text}]}
    stamp(ast, config=False, commit_sha="abcd1234")
    assert ast["children"][0]["value"] == text


def test_an_ast_without_frontmatter_is_left_alone():
    ast = {"type": "root", "children": [{"type": "paragraph", "children": []}]}
    stamp(ast, config=False, commit_sha="abcd1234")
    assert ast == {"type": "root", "children": [{"type": "paragraph", "children": []}]}


def test_commit_ids_are_lowercased_and_malformed_ones_refused():
    assert check_commit_sha("ABCDEF12") == "abcdef12"
    for bad in ("abc", "g" * 40, "0" * 65, " abcd"):
        with pytest.raises(ValueError, match="4 to 64 hexadecimal"):
            check_commit_sha(bad)
