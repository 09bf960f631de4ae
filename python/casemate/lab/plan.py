"""What `lab up` does with the containers it finds: pure, decided from names, image ids and
profiles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from casemate.lab.recipe import node_order


@dataclass(frozen=True, slots=True)
class Found:
    """A lab container as `docker inspect` shows it."""

    running: bool
    image_id: str
    profile: str = "docker"  # its io.casemate.lab.profile label


@dataclass(frozen=True, slots=True)
class Plan:
    keep: tuple[str, ...]  # running the wanted image and profile already
    remove: tuple[str, ...]  # surplus, stopped, or on another image or profile
    start: tuple[str, ...]  # wanted and not kept (some of them replace removed ones)


def plan_nodes(
    wanted: Sequence[str], found: Mapping[str, Found], image_id: str, profile: str = "docker"
) -> Plan:
    keep = tuple(
        n
        for n in wanted
        if n in found
        and found[n].running
        and found[n].image_id == image_id
        and found[n].profile == profile
    )
    remove = tuple(sorted((n for n in found if n not in keep), key=node_order))
    start = tuple(n for n in wanted if n not in keep)
    return Plan(keep, remove, start)
