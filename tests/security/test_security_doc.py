"""docs/security.md names the test behind each claim: every one it names must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
REFERENCE = re.compile(
    r"`((?:security|integration|unit|resilience|browser)/[a-z_]+\.py)(?:::([a-z0-9_]+))?`"
)


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_test_the_security_doc_names_exists():
    references = REFERENCE.findall(DOC.read_text())
    assert len(references) >= 60, "the page names fewer tests than expected"
    missing = []
    for file, name in references:
        path = ROOT / "tests" / file
        if not path.exists():
            missing.append(file)
        elif name and name not in _test_names(path):
            missing.append(f"{file}::{name}")
    assert not missing, f"docs/security.md names tests that do not exist: {missing}"
