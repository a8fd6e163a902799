"""docs/compatibility.md names, for each client call, the test that keeps its row true:
every test it names must exist, or the page would vouch for nothing."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests" / "integration"


def named_tests() -> list[tuple[str, str | None]]:
    """(file, test or None) for each `file.py`, `file.py::test` or `::test` cited; a bare
    `::test` belongs to the file cited before it in the same table cell."""
    cited = []
    for line in (REPO / "docs" / "compatibility.md").read_text().splitlines():
        for cell in line.split("|"):
            current = None
            for token in re.findall(r"`([^`]+)`", cell):
                match = re.fullmatch(r"(test_\w+\.py)?(?:::(test_\w+))?", token)
                if not match or not any(match.groups()):
                    continue
                current = match[1] or current
                assert current, f"{token} names no file"
                cited.append((current, match[2]))
    return cited


def test_every_test_the_compatibility_page_names_exists():
    cited = named_tests()
    assert len(cited) > 30
    missing = [
        f"{file}::{test}" if test else file
        for file, test in cited
        if not (TESTS / file).exists()
        or (test and not re.search(rf"^def {test}\(", (TESTS / file).read_text(), re.M))
    ]
    assert not missing, f"docs/compatibility.md names tests that do not exist: {missing}"
