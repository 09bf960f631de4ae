"""JSON text of report data, written by orjson (C) where it can: the standard library writes
indented JSON with its pure-Python encoder, which costs a report of eight hosts more CPU than
judging them. orjson refuses what JSON's standard encoder takes and it does not (integers beyond
64 bits, keys that are not strings): that data is written by the standard library instead, with the
same layout."""

from __future__ import annotations

import json
from typing import Any

import orjson


def indented(value: Any) -> str:
    """`value` as JSON with a two-space indent, non-ASCII text as it is (UTF-8)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode("utf-8")
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, indent=2, ensure_ascii=False)


def canonical(value: Any) -> str:
    """`value` as one line of JSON with sorted keys (a key for equal data); what is not JSON is
    written as str() would write it."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode("utf-8")
    except TypeError:
        return json.dumps(value, sort_keys=True, default=str)
