"""The shipped catalog is sound, and every kind of broken entry is one precise line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from casemate import cli
from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.errors import BadInputError, CatalogError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "catalogs"
KINDS = builtin_kinds()


def test_shipped_catalog_loads() -> None:
    catalog = load_catalog(None, KINDS)
    ids = catalog.ids()
    assert len(ids) == len(set(ids))
    assert len(catalog.digest) == 64


def test_docker_sections_2_and_3_are_complete() -> None:
    catalog = load_catalog(None, KINDS)
    refs = {e.ref for e in catalog.entries if e.benchmark == "cis-docker"}
    assert {f"2.{n}" for n in range(1, 19)} <= refs
    assert {f"3.{n}" for n in range(1, 25)} <= refs


def test_display_number_is_derived_from_id() -> None:
    entry = load_catalog(None, KINDS).get("cis_docker_3_17")
    assert entry is not None
    assert entry.ref == "3.17"
    assert entry.section == "3"


def test_levels_select() -> None:
    catalog = load_catalog(None, KINDS)
    level1 = select(catalog, Selection(level=1))
    level2 = select(catalog, Selection(level=2))
    assert all(e.control.level == 1 for e in level1)
    assert len(level2) > len(level1)
    named = select(catalog, Selection(level=1, controls=("cis_docker_3_17",)))
    assert [e.id for e in named] == ["cis_docker_3_17"]  # a named control wins over the level


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_title", "missing_title.yml:14: cis_docker_2_3: title: Field required"),
        ("bad_level", "bad_level.yml:14: cis_docker_2_3: level: Input should be 1 or 2"),
        (
            "unknown_kind",
            "unknown_kind.yml:14: cis_docker_2_3: check.kind: unknown kind 'daemon_yaml_key'",
        ),
        (
            "bad_params",
            "bad_params.yml:14: cis_docker_2_3: check.params.colour: Extra inputs are not permitted",
        ),
        ("duplicate_id", "duplicate_id.yml:14: cis_docker_2_2: id: duplicate"),
        ("wrong_prefix", "wrong_prefix.yml:14: cis_k8s_1_1_1: id: must start with 'cis_docker_'"),
        (
            "automated_without_check",
            "automated_without_check.yml:14: cis_docker_2_3: entry: an automated control needs a check",
        ),
        (
            "manual_without_guidance",
            "manual_without_guidance.yml:14: cis_docker_2_1: entry: a control that is not both checked and remediated needs `manual:`",
        ),
        ("unknown_group", "unknown_group.yml:14: cis_docker_2_3: applies_to.0: Input should be"),
        (
            "unknown_field",
            "unknown_field.yml:14: cis_docker_2_3: severity: Extra inputs are not permitted",
        ),
        ("invalid_yaml", "invalid_yaml.yml:16: expected"),
        ("not_a_mapping", "not_a_mapping.yml: a catalog file is a mapping"),
    ],
)
def test_bad_entry_is_one_precise_line(tmp_path: Path, case: str, message: str) -> None:
    shutil.copy(FIXTURES / f"{case}.yml", tmp_path / f"{case}.yml")
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path, KINDS)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_missing_or_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalog files"):
        load_catalog(tmp_path, KINDS)
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(tmp_path / "nope", KINDS)


PROFILED = """\
benchmark: casemate-host
version: "1.0"
title: profiles
id_prefix: cm_host_
controls:
  - id: cm_host_9_1
    title: Harden the SSH server
    description: kept and hardened on standard hosts only
    level: 1
    automated: false
    manual: something a person does on standard hosts
    applies_to: [docker_hosts]
    profiles: [standard]
  - id: cm_host_9_2
    title: Turn the SSH server off
    description: only immutable hosts have no SSH at all
    level: 1
    automated: false
    manual: something a person does on immutable hosts
    applies_to: [docker_hosts]
    profiles: [immutable]
  - id: cm_host_9_3
    title: Something every host gets
    description: no profiles given means every profile
    level: 1
    automated: false
    manual: something a person does on every host
    applies_to: [docker_hosts]
"""


def test_profiles_select(tmp_path: Path) -> None:
    (tmp_path / "host.yml").write_text(PROFILED)
    catalog = load_catalog(tmp_path, KINDS)
    ids = {
        p: [e.id for e in select(catalog, Selection(profile=p))] for p in ("standard", "immutable")
    }
    assert ids == {
        "standard": ["cm_host_9_1", "cm_host_9_3"],
        "immutable": ["cm_host_9_2", "cm_host_9_3"],
    }
    assert len(select(catalog, Selection(profile=None))) == 3
    with pytest.raises(BadInputError, match="cm_host_9_2 is not part of profile 'standard'"):
        select(catalog, Selection(controls=("cm_host_9_2",)))
    with pytest.raises(BadInputError, match="--profile must be one of standard, immutable"):
        select(catalog, Selection(profile="frozen"))


def test_opt_in_remediation_needs_guidance_and_shows_as_opt_in() -> None:
    from casemate.catalog.model import Control

    base = {
        "id": "cis_k8s_1_2_1",
        "title": "Refuse anonymous requests",
        "description": "anonymous requests reach the authorizers",
        "level": 1,
        "automated": True,
        "applies_to": ["k8s_control_plane"],
        "remediation": {"role": "kube_control_plane", "opt_in": True},
        "check": {"kind": "manifest_flag", "params": {}},
    }
    with pytest.raises(ValueError, match="an opt-in remediation needs `manual:`"):
        Control.model_validate(base)
    control = Control.model_validate(base | {"manual": "weigh the anonymous health probes first"})
    assert control.mode == "opt-in"
    entry = load_catalog(None, KINDS).get("cis_k8s_1_2_1")
    assert entry is not None and entry.control.mode == "opt-in"


DATED = """\
benchmark: cis-docker
version: 1.6.0
title: CIS Docker Benchmark
id_prefix: cis_docker_
controls:
  - id: cis_docker_2_1
    title: Review the daemon log level
    description: A control reviewed by hand.
    level: LEVEL
    automated: false
    applies_to: [docker_hosts]
    manual: MANUAL
"""


@pytest.mark.parametrize(
    ("level", "manual", "said"),
    [
        ("1", "2026-02-30", "dated.yml:6: cis_docker_2_1: manual: String should have at least"),
        (
            "2026-02-30",
            "Look at the log level by hand.",
            "dated.yml:6: cis_docker_2_1: level: Input should be",
        ),
    ],
    ids=["text-field", "number-field"],
)
def test_an_impossible_unquoted_date_is_text_never_a_traceback(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    level: str,
    manual: str,
    said: str,
) -> None:
    """YAML's timestamp resolver takes `2026-02-30` for a date and PyYAML then fails with a
    bare ValueError; the catalog reads dates as text, so the field it is in is named."""
    (tmp_path / "dated.yml").write_text(DATED.replace("LEVEL", level).replace("MANUAL", manual))
    with pytest.raises(SystemExit) as done:
        cli.main(["--catalog", str(tmp_path), "catalog", "show", "cis_docker_2_1"])
    err = capsys.readouterr().err
    assert done.value.code == 2
    assert err.startswith(f"casemate: error: {said}") and err.count("\n") == 1, err
