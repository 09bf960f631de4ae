"""The closed set of comparators catalog entries may use, and how each reads in a report."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any


class Op(StrEnum):
    EQ = "eq"
    NE = "ne"
    IN = "in"
    NOT_IN = "not_in"
    REGEX = "regex"
    NOT_REGEX = "not_regex"
    MAX_MODE = "max_mode"
    GE = "ge"
    LE = "le"
    PRESENT = "present"
    ABSENT = "absent"
    EMPTY = "empty"
    NONEMPTY = "nonempty"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    ANY_MATCH = "any_match"
    NONE_MATCH = "none_match"
    SUBSET = "subset"  # set, not empty, and every item one of `value` (e.g. allowed TLS suites)


# Ops that take no `value`.
UNARY = frozenset({Op.PRESENT, Op.ABSENT, Op.EMPTY, Op.NONEMPTY})


class Missing:
    """Marks a setting nobody set (distinct from an explicit null)."""

    def __repr__(self) -> str:
        return "<unset>"


MISSING = Missing()


def show(value: Any) -> str:
    """Render a value the way reports print it: JSON for data, `<unset>` for missing."""
    if isinstance(value, Missing):
        return "<unset>"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


_SHOWN = {  # the ops whose text shows the value as reports print it (show)
    Op.EQ: "= {}",
    Op.NE: "!= {}",
    Op.IN: "one of {}",
    Op.NOT_IN: "none of {}",
    Op.GE: ">= {}",
    Op.LE: "<= {}",
    Op.CONTAINS: "contains {}",
    Op.NOT_CONTAINS: "does not contain {}",
    Op.SUBSET: "set, and only items from {}",
}
_AS_IS = {  # the ops whose text holds the value as written (a pattern, a mode), or none
    Op.REGEX: "matches /{}/",
    Op.NOT_REGEX: "does not match /{}/",
    Op.MAX_MODE: "mode {} or stricter",
    Op.ANY_MATCH: "an item matches /{}/",
    Op.NONE_MATCH: "no item matches /{}/",
    Op.PRESENT: "set",
    Op.ABSENT: "not set",
    Op.EMPTY: "unset or empty",
    Op.NONEMPTY: "set and not empty",
}


def describe(op: Op, value: Any = None) -> str:
    """The `expected` text of a verdict."""
    if op in _SHOWN:
        return _SHOWN[op].format(show(value))
    return _AS_IS[op].format(value)


def mode_within(mode: str, limit: str) -> bool:
    """True when `mode` has no permission bit outside `limit` (both octal strings)."""
    return int(mode, 8) & ~int(limit, 8) & 0o7777 == 0


def _items(observed: Any) -> list[Any]:
    if isinstance(observed, Missing) or observed is None:
        return []
    if isinstance(observed, list | tuple):
        return list(observed)
    if isinstance(observed, dict):
        return list(observed)
    return [observed]


def _number(value: Any) -> float | None:
    if isinstance(value, bool | Missing):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _le_ge(op: Op, observed: Any, value: Any) -> bool:
    left, right = _number(observed), _number(value)
    if left is None or right is None:
        return False
    return left >= right if op is Op.GE else left <= right


def compare(op: Op, observed: Any, value: Any = None) -> bool:
    """Judge `observed` against `value` with `op`. Never raises on odd input: odd input fails."""
    unset = isinstance(observed, Missing) or observed is None
    if op is Op.PRESENT:
        return not unset
    if op is Op.ABSENT:
        return unset
    if op is Op.EMPTY:
        return unset or observed in ("", [], {})
    if op is Op.NONEMPTY:
        return not unset and observed not in ("", [], {})
    if op in (Op.GE, Op.LE):
        return _le_ge(op, observed, value)
    if op is Op.MAX_MODE:
        return (
            isinstance(observed, str)
            and bool(re.fullmatch(r"[0-7]{3,4}", observed))
            and (mode_within(observed, str(value)))
        )
    return _compare_values(op, observed, value, unset)


def _compare_values(op: Op, observed: Any, value: Any, unset: bool) -> bool:
    if op is Op.EQ:
        return not unset and bool(observed == value)
    if op is Op.NE:
        return bool(observed != value)
    if op is Op.IN:
        return not unset and bool(observed in value)
    if op is Op.NOT_IN:
        return bool(observed not in value)
    if op is Op.REGEX:
        return not unset and re.search(str(value), show(observed)) is not None
    if op is Op.NOT_REGEX:
        return unset or re.search(str(value), show(observed)) is None
    if op is Op.CONTAINS:
        return value in _items(observed)
    if op is Op.NOT_CONTAINS:
        return value not in _items(observed)
    if op is Op.SUBSET:
        items = _items(observed)
        return bool(items) and all(i in value for i in items)
    matches = [i for i in _items(observed) if re.search(str(value), show(i))]
    if op is Op.ANY_MATCH:
        return bool(matches)
    return not matches  # Op.NONE_MATCH
