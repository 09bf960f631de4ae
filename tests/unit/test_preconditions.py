"""`only_if` is any check kind with its parameters. A precondition seen not to hold makes the
control not_applicable; one that could not be observed makes it an error, never not_applicable;
a precondition that holds leaves the control to its own check."""

from __future__ import annotations

from pathlib import Path

import pytest

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Status
from casemate.errors import CatalogError
from casemate.verify import judge, wanted_probes

from .obs import stat

KINDS = builtin_kinds()
HEAD = """benchmark: cis-docker
version: 1.6.0
title: CIS Docker Benchmark
id_prefix: cis_docker_
controls:
  - id: cis_docker_3_17
    title: Make daemon.json root-owned
    description: Only root may change what dockerd runs with.
    level: 1
    automated: true
    applies_to: [docker_hosts]
    remediation: {role: docker_files}
    check:
      kind: file_owner
      params: {path: /etc/docker/daemon.json, owner: root, group: root}
"""


def catalog(tmp_path: Path, only_if: str) -> Path:
    (tmp_path / "docker.yml").write_text(HEAD + f"      only_if: {only_if}\n")
    return tmp_path


def test_any_check_kind_can_be_a_precondition(tmp_path: Path) -> None:
    cond = "{kind: file_exists, params: {path: /etc/docker/daemon.json}}"
    (entry,) = load_catalog(catalog(tmp_path, cond), KINDS).entries
    assert [p.key for p in wanted_probes([entry])] == ["stat:/etc/docker/daemon.json"]
    present = {"stat:/etc/docker/daemon.json": stat("/etc/docker/daemon.json", user="dev")}
    held = judge(entry, Observations("h", {}, present))
    assert held.status is Status.FAIL  # the precondition holds: the check's own verdict
    absent = {"stat:/etc/docker/daemon.json": {"path": "/etc/docker/daemon.json", "exists": False}}
    skipped = judge(entry, Observations("h", {}, absent))
    assert skipped.status is Status.NOT_APPLICABLE
    assert skipped.expected.startswith("only when /etc/docker/daemon.json")


def test_a_precondition_that_could_not_be_observed_is_an_error(tmp_path: Path) -> None:
    cond = "{kind: file_exists, params: {path: /etc/docker/daemon.json}}"
    (entry,) = load_catalog(catalog(tmp_path, cond), KINDS).entries
    failed = {"stat:/etc/docker/daemon.json": {"error": "stat /etc/docker: Permission denied"}}
    v = judge(entry, Observations("h", {}, failed))
    assert v.status is Status.ERROR
    assert v.observed == "stat /etc/docker: Permission denied"
    assert v.evidence == ("stat:/etc/docker/daemon.json",)


@pytest.mark.parametrize(
    ("only_if", "message"),
    [
        ("{kind: nope, params: {}}", "check.only_if.kind: unknown kind 'nope'"),
        ("{kind: file_exists, params: {colour: red}}", "check.only_if.params.path: Field required"),
        ("{cmd: 'true', op: present}", "check.only_if.kind: Field required"),
    ],
)
def test_a_bad_precondition_is_one_precise_line(tmp_path: Path, only_if: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(catalog(tmp_path, only_if), KINDS)
    assert str(caught.value).startswith(f"docker.yml:6: cis_docker_3_17: {message}")


def test_the_shipped_preconditions_are_checks_of_their_own() -> None:
    shipped = [
        e for e in load_catalog(None, KINDS).entries if e.control.check and e.control.check.only_if
    ]
    assert len(shipped) >= 12
    assert all(e.check is not None and e.check.only_if is not None for e in shipped)
