"""The resolved inventory: hosts, their groups and variables, and `--limit` checked against it."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casemate import redact
from casemate.catalog.model import GROUPS
from casemate.errors import InventoryError
from casemate.redact import Redactor


@dataclass(frozen=True, slots=True)
class Inventory:
    source: Path
    raw: dict[str, Any]  # `ansible-inventory --list` output; stored redacted (see redactor())

    def variable_sets(self) -> list[Mapping[str, Any]]:
        """Every mapping of variables in the listing: each host's, and each group's `vars`. Host
        and group names are not variable names: a host called `secrets-1` is no secret."""
        hostvars = self.raw.get("_meta", {}).get("hostvars", {})
        groups = [g for name, g in self.raw.items() if name != "_meta" and isinstance(g, dict)]
        return [*hostvars.values(), *(g["vars"] for g in groups if isinstance(g.get("vars"), dict))]

    def redactor(self, environ: Mapping[str, str] | None = None) -> Redactor:
        """What takes this inventory's secrets out of a run's records: its secret variables, vault
        values and private keys, and the secret variables of `environ` (ansible-runner records
        the environment it passes to Ansible)."""
        return redact.redactor(*self.variable_sets(), dict(environ or {}))

    def redacted(self, redactor: Redactor) -> dict[str, Any]:
        """The listing as a run stores it: every variable set through `redactor.variables`, the
        rest (host and group names, membership) scrubbed as any text is."""
        out: dict[str, Any] = {}
        for name, node in self.raw.items():
            out[name] = node
            if name == "_meta" and isinstance(node, dict):
                hosts = node.get("hostvars", {})
                out[name] = node | {
                    "hostvars": {h: redactor.variables(v) for h, v in hosts.items()}
                }
            elif isinstance(node, dict) and isinstance(node.get("vars"), dict):
                out[name] = node | {"vars": redactor.variables(node["vars"])}
        redacted: dict[str, Any] = redactor.scrub(out)
        return redacted

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
