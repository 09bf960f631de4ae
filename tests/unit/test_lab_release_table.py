"""docs/testing.md's table of which lab module runs on which Debian release names every lab module
that leaves the default release (CI's split or a pinned release), and no module that does not."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]


def modules_off_the_default() -> set[str]:
    """Lab modules with an open_lab(...) call that names a release (release= or ci_release=)."""
    found = set()
    for path in (ROOT / "tests" / "lab").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "open_lab"
                and any(k.arg in ("release", "ci_release") for k in node.keywords)
            ):
                found.add(path.name)
    return found


def modules_in_the_table() -> set[str]:
    text = (ROOT / "docs" / "testing.md").read_text()
    section = text.split("## Which release each lab module runs on", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(test_\w+\.py)` \| (?:bookworm|trixie)", section, re.MULTILINE))


def test_the_release_table_names_every_module_off_the_default_release() -> None:
    assert modules_off_the_default()  # the scan finds the split at all
    assert modules_in_the_table() == modules_off_the_default()
