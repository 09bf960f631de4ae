"""The drift script of the Docker lab tests (tests/lab/fixtures/spoil_docker.sh) covers the catalog:
every automated control docker_daemon or docker_files fixes is either drifted by a line that names
it, or listed in the script's header with the reason a container node cannot drift it. A new
control without either fails here, before a lab run would miss it."""

from __future__ import annotations

import re
from pathlib import Path

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds

SCRIPT = Path(__file__).parent.parent / "lab" / "fixtures" / "spoil_docker.sh"
ROLES = ("docker_daemon", "docker_files")
ID = re.compile(r"\b(?:cis|cm)_[a-z0-9]+(?:_[0-9]+)+\b")
CATALOG = load_catalog(None, builtin_kinds())


def header_and_body(text: str) -> tuple[list[str], list[str]]:
    """The header's list of what cannot be drifted (its indented comment lines), and the rest."""
    lines = text.splitlines()
    start = next(
        i for i, line in enumerate(lines) if line.startswith("# Controls this script cannot")
    )
    end = next(i for i in range(start + 1, len(lines)) if not lines[i].startswith("#   "))
    return lines[start + 1 : end], lines[:start] + lines[end:]


def unspoilable(text: str | None = None) -> set[str]:
    """Controls a container node cannot be made to fail, as the script's header lists them."""
    header, _ = header_and_body(SCRIPT.read_text() if text is None else text)
    return {m[1] for line in header if (m := re.match(r"#\s+(\S+)\s", line)) and ID.fullmatch(m[1])}


def drifted(text: str | None = None) -> set[str]:
    """Controls named by the script outside its header: the lines that drift them."""
    _, body = header_and_body(SCRIPT.read_text() if text is None else text)
    return {m for line in body for m in ID.findall(line)}


def automated_ids() -> set[str]:
    return {
        e.id
        for e in CATALOG.entries
        if e.control.automated
        and e.control.remediation is not None
        and e.control.remediation.role in ROLES
    }


def test_spoil_script_drifts_every_automated_docker_daemon_and_files_control() -> None:
    missing = automated_ids() - drifted() - unspoilable()
    assert not missing, f"no line of spoil_docker.sh drifts {sorted(missing)}, nor says why not"


def test_spoil_script_names_only_controls_of_the_catalog_and_each_once() -> None:
    assert (drifted() | unspoilable()) <= set(CATALOG.ids())
    assert not drifted() & unspoilable()
    assert unspoilable() == {"cis_docker_2_6", "cis_docker_2_11", "cis_docker_2_17", "cm_rt_3_4"}


def test_a_control_without_a_line_is_caught() -> None:
    text = SCRIPT.read_text()
    without = "\n".join(line for line in text.splitlines() if "cis_docker_2_14" not in line)
    assert "cis_docker_2_14" in automated_ids() - drifted(without) - unspoilable(without)
