"""The resolved inventory: hosts, their groups and variables, and `--limit` checked against it."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casemate.catalog.model import GROUPS
from casemate.errors import InventoryError


@dataclass(frozen=True, slots=True)
class Inventory:
    source: Path
    raw: dict[str, Any]  # `ansible-inventory --list` output, kept as evidence of what was targeted

    def hosts(self) -> list[str]:
        """Every host: those with variables (ansible-inventory lists only those under _meta) and
        every group's members."""
        found = set(self.raw.get("_meta", {}).get("hostvars", {}))
        for name, group in self.raw.items():
            if name != "_meta" and isinstance(group, dict):
                found.update(group.get("hosts", []))
        return sorted(found)

    def groups(self) -> dict[str, list[str]]:
        """group -> every host in it, children included."""
        out: dict[str, list[str]] = {}
        for name in self.raw:
            if name != "_meta":
                out[name] = sorted(self._members(name, set()))
        return out

    def _members(self, group: str, seen: set[str]) -> set[str]:
        if group in seen:
            return set()
        seen.add(group)
        node = self.raw.get(group, {})
        hosts = set(node.get("hosts", []))
        for child in node.get("children", []):
            hosts |= self._members(child, seen)
        return hosts

    def groups_of(self, host: str) -> list[str]:
        return sorted(g for g, members in self.groups().items() if host in members)

    def hostvars(self, host: str) -> Mapping[str, Any]:
        return dict(self.raw.get("_meta", {}).get("hostvars", {}).get(host, {}))

    def casemate_hosts(self) -> list[str]:
        """Hosts in at least one group casemate hardens."""
        groups = self.groups()
        return sorted({h for g in GROUPS for h in groups.get(g, [])})

    def select(self, limit: str | None) -> list[str]:
        """The casemate hosts `--limit` names. Every item must match something (a host or group
        name, or a shell-style pattern); `!item` excludes."""
        targets = self.casemate_hosts()
        if not targets:
            raise InventoryError(
                f"{self.source}: no host is in any of the groups {', '.join(GROUPS)}"
            )
        if not limit:
            return targets
        groups = self.groups()
        chosen: set[str] = set()
        excluded: set[str] = set()
        items = [i.strip() for i in limit.replace(":", ",").split(",") if i.strip()]
        for item in items:
            negate = item.startswith("!")
            name = item.removeprefix("!")
            matched = self._match(name, groups)
            if not matched:
                raise InventoryError(f"--limit: '{name}' matches no host or group in {self.source}")
            (excluded if negate else chosen).update(matched)
        if not chosen:
            chosen = set(targets)
        picked = sorted((chosen - excluded) & set(targets))
        if not picked:
            raise InventoryError(f"--limit {limit!r} leaves no host to work on")
        return picked

    def _match(self, name: str, groups: Mapping[str, list[str]]) -> set[str]:
        hosts = self.hosts()
        if name in groups:
            return set(groups[name])
        if name in hosts:
            return {name}
        matched = set(fnmatch.filter(hosts, name))
        for group in fnmatch.filter(list(groups), name):
            matched |= set(groups[group])
        return matched
