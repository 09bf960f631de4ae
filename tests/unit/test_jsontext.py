"""Report JSON written by orjson: the same text the standard library writes with the same layout,
and what orjson refuses (integers beyond 64 bits, keys that are not strings) still written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from casemate.report.jsontext import canonical, indented

SAMPLES: list[Any] = [
    {"b": [1, 2.5, None, True], "a": {"é": 'naïve \u2028 \x01 "q" \\'}, "e": [], "o": {}},
    [{"nested": [[1], [2, {"x": "y"}]]}],
    "plain",
    0,
]


@pytest.mark.parametrize("value", SAMPLES)
def test_indented_is_what_the_standard_library_writes(value: Any) -> None:
    assert indented(value) == json.dumps(value, indent=2, ensure_ascii=False)


@pytest.mark.parametrize("value", SAMPLES)
def test_canonical_sorts_keys_as_the_standard_library_does(value: Any) -> None:
    assert json.loads(canonical(value)) == value
    assert canonical(value) == json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_what_orjson_refuses_is_still_written() -> None:
    big = {"inode": 2**70, 3: "int key"}
    assert json.loads(indented(big)) == {"inode": 2**70, "3": "int key"}
    assert json.loads(canonical({"inode": 2**70})) == {"inode": 2**70}
