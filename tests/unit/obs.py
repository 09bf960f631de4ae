"""Helpers to build recorded observations for check-kind tests."""

from __future__ import annotations

import json
from typing import Any

from casemate.checks.base import Observations


def stat(
    path: str, mode: str = "0644", user: str = "root", group: str = "root", kind: str = "file"
) -> dict[str, Any]:
    return {
        "path": path,
        "exists": True,
        "type": kind,
        "mode": mode,
        "user": user,
        "group": group,
        "uid": 0,
        "gid": 0,
    }


def absent(path: str) -> dict[str, Any]:
    return {"path": path, "exists": False}


def daemon(
    config: dict[str, Any] | None, argv: list[str] | None = None, **extra: Any
) -> Observations:
    data: dict[str, Any] = {
        "read:/etc/docker/daemon.json": (
            {"exists": True, "content": json.dumps(config)}
            if config is not None
            else {"exists": False}
        ),
        "proc:dockerd": (
            {"running": True, "pid": 10, "argv": argv} if argv is not None else {"running": False}
        ),
    }
    data.update(extra)
    return Observations(host="h1", facts={"container": ""}, data=data)


def obs(data: dict[str, Any], container: str = "") -> Observations:
    return Observations(host="h1", facts={"container": container}, data=data)
