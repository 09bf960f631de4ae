"""What the roles and docs repeat of the catalog is rendered from it (casemate.generated, make
docs): the committed files are current, a new daemon.json control reaches the role's tag list, its
flag table and the docs with nothing written by hand, and a broken part is one precise line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from casemate.catalog.loader import load_catalog
from casemate.catalog.model import Entry
from casemate.checks import builtin_kinds
from casemate.generated import GeneratedPartError, Sources, main, render_file, stale, write
from casemate.locations import content_root, package_file

ROOT = content_root()
KINDS = builtin_kinds()
CATALOG = load_catalog(None, KINDS)

NEW_CONTROL = """
  - id: cis_docker_2_19
    title: Keep raw log output off
    description: A made-up daemon.json control that only this test adds to the catalog.
    level: 1
    automated: true
    applies_to: [docker_hosts]
    remediation: {role: docker_daemon, vars: [docker_daemon_raw_logs]}
    check:
      kind: daemon_json_key
      params: {key: raw-logs, flags: ["--raw-logs"], type: bool, unset: false, op: eq, value: false}
"""


def checkout(tmp_path: Path) -> Path:
    """A copy of what the generator reads and writes: the roles and the docs."""
    root = tmp_path / "checkout"
    for part in ("roles", "docs"):
        shutil.copytree(ROOT / part, root / part)
    return root


def test_committed_generated_files_are_current() -> None:
    out_of_date = [str(p.relative_to(ROOT)) for p in stale(ROOT, CATALOG)]
    assert out_of_date == [], "run `make docs` (python -m casemate.generated) and commit the result"


def test_every_benchmark_has_a_control_page_with_every_control() -> None:
    for benchmark in CATALOG.benchmarks():
        page = (ROOT / "docs" / "controls" / f"{benchmark}.md").read_text()
        entries: list[Entry] = [e for e in CATALOG.entries if e.benchmark == benchmark]
        assert all(f"### {e.id}: {e.ref} " in page for e in entries), benchmark


def test_a_new_daemon_json_control_needs_no_hand_edit_beyond_catalog_and_task(
    tmp_path: Path,
) -> None:
    root = checkout(tmp_path)
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(package_file("catalog"), catalog_dir)
    with (catalog_dir / "docker.yml").open("a") as f:
        f.write(NEW_CONTROL)
    catalog = load_catalog(catalog_dir, KINDS)
    assert any(p.name == "apply.yml" for p in stale(root, catalog))

    write(root, catalog)

    role = root / "roles" / "docker_daemon"
    tasks = yaml.safe_load((role / "tasks" / "apply.yml").read_text())
    (shared,) = [t for t in tasks if t["name"].startswith("Write, apply and confirm daemon.json")]
    assert "cis_docker_2_19" in shared["tags"]  # the shared write and apply steps run for it
    flags = yaml.safe_load((role / "vars" / "main.yml").read_text())["docker_daemon_flag_names"]
    assert flags["raw-logs"] == ["--raw-logs"]  # the facts module looks for its flag
    roles_md = (root / "docs" / "roles.md").read_text()
    assert (
        "| cis_docker_2_19 | CIS Docker 2.19 | 1 | automated | Keep raw log output off |"
        in roles_md
    )
    assert (
        "### cis_docker_2_19: 2.19 Keep raw log output off"
        in (root / "docs" / "controls" / "cis-docker.md").read_text()
    )
    assert stale(root, catalog) == []


def test_a_hand_edit_inside_a_part_is_out_of_date_and_rendered_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = checkout(tmp_path)
    apply = root / "roles" / "docker_daemon" / "tasks" / "apply.yml"
    committed = apply.read_text()
    apply.write_text(committed.replace("cis_docker_2_3, ", ""))
    (root / "docs" / "controls" / "retired-benchmark.md").write_text("# gone\n")

    assert main(["--check", "--root", str(root)]) == 1
    said = capsys.readouterr().out
    assert "out of date: roles/docker_daemon/tasks/apply.yml" in said
    assert "out of date: docs/controls/retired-benchmark.md" in said

    assert main(["--root", str(root)]) == 0
    assert apply.read_text() == committed
    assert not (root / "docs" / "controls" / "retired-benchmark.md").exists()
    assert main(["--check", "--root", str(root)]) == 0


@pytest.mark.parametrize(
    "part,message",
    [
        (
            "# casemate-generated: tagz docker_daemon x\n# casemate-generated: end\n",
            ":3: unknown renderer 'tagz'",
        ),
        (
            "# casemate-generated: tags docker_daemon x\n",
            ":3: generated part without an end marker",
        ),
        ("# casemate-generated: end\n", ":3: an end marker without a start"),
        (
            "# casemate-generated: tags nosuchrole x\n# casemate-generated: end\n",
            ":3: no control of the catalog names the role 'nosuchrole'",
        ),
        (
            "# casemate-generated: tags sshd x colour=red\n# casemate-generated: end\n",
            ":3: unknown filter 'colour=red'",
        ),
        (
            "# casemate-generated: tags sshd x under=9.9\n# casemate-generated: end\n",
            ":3: the filters under=9.9 leave no control of sshd",
        ),
        (
            "# casemate-generated: flag-names sshd x\n# casemate-generated: end\n",
            ":3: no daemon_json_key check of sshd names dockerd flags",
        ),
        (
            "# casemate-generated: role-controls\n# casemate-generated: end\n",
            ":3: role-controls needs ROLE",
        ),
    ],
)
def test_a_broken_part_is_one_line_naming_file_and_line(
    tmp_path: Path, part: str, message: str
) -> None:
    tasks = tmp_path / "roles" / "somerole" / "tasks"
    tasks.mkdir(parents=True)
    path = tasks / "main.yml"
    with pytest.raises(GeneratedPartError) as err:
        render_file(Sources(tmp_path, CATALOG), path, "---\n- name: A step\n" + part)
    assert str(err.value).startswith("roles/somerole/tasks/main.yml:")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_flag_names_refuse_two_controls_that_disagree_on_a_key(tmp_path: Path) -> None:
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(package_file("catalog"), catalog_dir)
    with (catalog_dir / "docker.yml").open("a") as f:
        f.write(
            NEW_CONTROL.replace('"--raw-logs"', '"--inter-container"').replace("raw-logs", "icc")
        )
    part = "# casemate-generated: flag-names docker_daemon x\n# casemate-generated: end\n"
    with pytest.raises(
        GeneratedPartError, match=r"main.yml:1: cis_docker_2_19: flags of icc differ"
    ):
        render_file(
            Sources(tmp_path, load_catalog(catalog_dir, KINDS)), tmp_path / "main.yml", part
        )
