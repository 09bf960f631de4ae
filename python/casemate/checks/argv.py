"""Reading settings from a process command line the way Go's flag parsers do: the values come from
the host readers' flag_values (roles/host_common/module_utils/casemate_host.py), the roles' own."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from casemate.checks.compare import MISSING
from casemate.readers import flag_values

ValueType = Literal["bool", "str", "int", "list", "dict"]


def coerce(raw: Any, value_type: ValueType) -> Any:
    """Turn a flag string or a loosely typed document value into the setting's type."""
    if value_type == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("true", "1", "yes", "on"):
            return True
        if text in ("false", "0", "no", "off"):
            return False
        return raw
    if value_type == "int":
        try:
            return int(raw)
        except (TypeError, ValueError):
            return raw
    if value_type == "list":
        if isinstance(raw, list):
            return raw
        return [p for p in str(raw).split(",") if p] if isinstance(raw, str) else [raw]
    if value_type == "dict":
        if isinstance(raw, str):
            try:
                return json.loads(raw)
            except ValueError:
                return raw
        return raw
    return (
        raw
        if isinstance(raw, str)
        else json.dumps(raw)
        if isinstance(raw, dict | list)
        else (str(raw).lower() if isinstance(raw, bool) else str(raw))
    )


def setting_from_flags(argv: Sequence[str], names: Sequence[str], value_type: ValueType) -> Any:
    """The flag value in effect, or MISSING. List flags accumulate; others take the last one."""
    values = flag_values(argv, names, value_type)
    if not values:
        return MISSING
    if value_type == "list":
        out: list[Any] = []
        for v in values:
            out.extend(coerce(v, "list"))
        return out
    return coerce(values[-1], value_type)
