"""The catalog is parsed once per load, by libyaml, into entries whose checks keep their validated
parameters: judging any number of hosts never validates a parameter again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.catalog.loader import load_catalog
from casemate.catalog.select import Selection, select
from casemate.checks import builtin_kinds
from casemate.checks.base import Params
from casemate.probe.collect import parse_answer
from casemate.verify import judge, wanted_probes

RECORDED = Path(__file__).parent.parent / "fixtures" / "observations"
CATALOG_FILES = sorted(
    (Path(__file__).parents[2] / "python" / "casemate" / "catalog").glob("*.yml")
)


def test_a_valid_catalog_is_parsed_once_per_file_by_libyaml(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert yaml.__with_libyaml__, "PyYAML here is built with libyaml"
    loaders: list[Any] = []
    real_load = yaml.load

    def load(stream: Any, Loader: Any) -> Any:  # noqa: N803 - PyYAML's own keyword
        loaders.append(Loader)
        return real_load(stream, Loader=Loader)

    def no_second_parse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a valid catalog is parsed once")

    monkeypatch.setattr(yaml, "load", load)
    monkeypatch.setattr(yaml, "compose", no_second_parse)
    monkeypatch.setattr(yaml, "safe_load", no_second_parse)
    load_catalog(None, builtin_kinds())
    assert len(loaders) == len(CATALOG_FILES)
    assert all(issubclass(loader, yaml.CSafeLoader) for loader in loaders)


def test_judging_never_validates_check_parameters_again(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = load_catalog(None, builtin_kinds())
    entries = select(catalog, Selection(level=2, profile=None))
    obs, _ = parse_answer("node", (RECORDED / "hardened-level2.json").read_text())

    def validated_again(cls: type[Params], *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{cls.__name__} validated again while judging")

    monkeypatch.setattr(Params, "model_validate", classmethod(validated_again))
    for _ in range(2):  # two hosts
        assert wanted_probes(entries)
        verdicts = [judge(e, obs) for e in entries]
    assert not [v for v in verdicts if "validated again" in v.observed]
    assert {v.status.value for v in verdicts} >= {"pass", "manual", "not_applicable"}


def test_every_check_keeps_its_typed_parameters() -> None:
    kinds = builtin_kinds()
    for entry in load_catalog(None, kinds).entries:
        spec = entry.control.check
        if spec is None:
            assert entry.check is None
            continue
        assert entry.check is not None
        assert entry.check.kind is kinds[spec.kind]
        assert isinstance(entry.check.params, kinds[spec.kind].params)
        again = kinds[spec.kind].params.model_validate(spec.params)
        assert entry.check.params.model_dump() == again.model_dump()
        if spec.only_if is not None:
            assert entry.check.only_if is not None
            assert entry.check.only_if.kind is kinds[spec.only_if.kind]
