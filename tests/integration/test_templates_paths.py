"""The path rules: whatever they accept stays inside the folder a client writes it to."""

from __future__ import annotations

import os
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmark_gateway.cli.templates import published_path
from agentmark_gateway.templates.paths import (
    check_dataset_name,
    check_path,
    dataset_name,
    dataset_path,
    is_dataset_path,
)

SEGMENT = st.sampled_from(["a", "b.c", "..", ".", "", "x y", "é", "\\", "/", "\x00", "~", "%2e"])
PATHS = (
    st.lists(SEGMENT, min_size=1, max_size=6)
    .map("/".join)
    .flatmap(
        lambda base: st.sampled_from([".mdx", ".json", ".jsonl", ".txt", ""]).map(
            lambda suffix: base + suffix
        )
    )
)


@given(st.one_of(PATHS, st.text(max_size=40)))
def test_an_accepted_path_never_leaves_its_folder(path):
    try:
        check_path(path)
    except ValueError:
        return
    pure = PurePosixPath(path)
    assert not pure.is_absolute()
    assert ".." not in pure.parts
    base = "/srv/agentmark"
    assert os.path.normpath(os.path.join(base, path)).startswith(base + "/")
    assert "\x00" not in path and "\\" not in path
    assert path.endswith((".mdx", ".json", ".jsonl"))


@pytest.mark.parametrize(
    "path",
    ["math.prompt.mdx", "agents/support.prompt.mdx", "a/b/c.json", "evals/math.jsonl", "é/x.mdx"],
)
def test_ordinary_project_paths_are_accepted(path):
    assert check_path(path) == path


def test_a_dataset_name_is_its_path_without_the_suffix():
    assert is_dataset_path("evals/math.jsonl")
    assert not is_dataset_path("evals/math.json")
    assert dataset_name("evals/math.jsonl") == "evals/math"
    assert dataset_path("evals/math") == "evals/math.jsonl"
    assert check_dataset_name("evals/math") == "evals/math"
    with pytest.raises(ValueError, match="drop the suffix"):
        check_dataset_name("evals/math.jsonl")


@pytest.mark.parametrize(
    ("file", "published"),
    [
        ("math.prompt.mdx.json", ("math.prompt.mdx", "template")),
        ("agents/triage.prompt.mdx.json", ("agents/triage.prompt.mdx", "template")),
        ("haiku.prompt.json", ("haiku.prompt.mdx", "template")),
        ("datasets/seasons.jsonl", ("datasets/seasons.jsonl", "dataset")),
        ("haiku.prompt.mdx", None),
        ("package.json", None),
        ("notes.md", None),
    ],
)
def test_push_publishes_built_files_at_the_path_the_loaders_ask_for(file, published):
    assert published_path(file) == published
