"""The lab as `casemate lab up` and `lab status` print it."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from casemate.lab import LabStatus


def status(lab: LabStatus) -> Group:
    t = Table(title=f"lab {lab.name} ({lab.image or 'no image'})", title_justify="left")
    for col in ("node", "profile", "address", "state", "health"):
        t.add_column(col)
    for n in lab.nodes:
        t.add_row(n.name, n.profile, n.address or "-", n.state, n.health)
    parts: list[Table | Text] = [t]
    if lab.inventory is not None:
        parts.append(Text(f"inventory: {lab.inventory}"))
    return Group(*parts)
