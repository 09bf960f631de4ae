"""Control selection: which catalog entries a run covers (profile, benchmark, level or ids)."""

from __future__ import annotations

from dataclasses import dataclass

from casemate.catalog.loader import Catalog
from casemate.catalog.model import PROFILES, Entry
from casemate.errors import BadInputError


@dataclass(frozen=True, slots=True)
class Selection:
    level: int = 1
    controls: tuple[str, ...] = ()
    benchmark: str | None = None
    profile: str | None = "standard"  # None: every profile (browsing the catalog)

    def record(self) -> dict[str, object]:
        """As run records and reports keep it."""
        return {
            "level": self.level,
            "controls": list(self.controls),
            "benchmark": self.benchmark,
            "profile": self.profile,
        }


def parse_controls(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(dict.fromkeys(i.strip() for i in text.split(",") if i.strip()))


def select(catalog: Catalog, selection: Selection) -> list[Entry]:
    """The entries a run covers: those of the profile, then named controls (which win over the
    level) or the level. Unknown ids, and named controls outside the profile, are bad input."""
    if selection.level not in (1, 2):
        raise BadInputError(f"--level must be 1 or 2, not {selection.level}")
    if selection.profile is not None and selection.profile not in PROFILES:
        raise BadInputError(
            f"--profile must be one of {', '.join(PROFILES)}, not '{selection.profile}'"
        )
    benchmarks = catalog.benchmarks()
    if selection.benchmark and selection.benchmark not in benchmarks:
        raise BadInputError(
            f"--benchmark: unknown benchmark '{selection.benchmark}' "
            f"(known: {', '.join(sorted(benchmarks))})"
        )
    entries = [
        e
        for e in catalog.entries
        if (not selection.benchmark or e.benchmark == selection.benchmark)
        and (selection.profile is None or selection.profile in e.control.profiles)
    ]
    if selection.controls:
        known = {e.id: e for e in catalog.entries}
        unknown = [c for c in selection.controls if c not in known]
        if unknown:
            raise BadInputError(f"--controls: unknown control '{unknown[0]}'")
        outside = [
            c for c in selection.controls if selection.profile not in known[c].control.profiles
        ]
        if outside:
            raise BadInputError(
                f"--controls: {outside[0]} is not part of profile '{selection.profile}'"
            )
        wanted = set(selection.controls)
        return [e for e in entries if e.id in wanted]
    return [e for e in entries if e.control.level <= selection.level]
