"""How a node's health is read: one `docker exec` runs PROBE, `health_of` reads its output."""

from __future__ import annotations

# Run in a node as `sh -c PROBE`; prints one line: "<up|down> <systemctl is-system-running>".
PROBE = (
    "if docker info >/dev/null 2>&1; then d=up; else d=down; fi; "
    's=$(systemctl is-system-running 2>/dev/null); echo "$d ${s:-unknown}"'
)
# Lists the failed units, one per line ("auditd.service loaded failed failed ...").
FAILED_UNITS = "systemctl --failed --plain --no-legend --no-pager 2>/dev/null"
READY = "ready"
STARTING = "starting"
_BOOTING = {"initializing", "starting", "offline", "unknown"}


def health_of(probe_output: str) -> str:
    """READY when the node's dockerd answers and systemd has settled (running or degraded:
    auditd cannot run in a container), STARTING while systemd boots, else a short reason."""
    words = probe_output.split()
    if len(words) != 2 or words[0] not in ("up", "down"):
        return "no answer from the node"
    dockerd, systemd = words
    settled = systemd in ("running", "degraded")
    if settled and dockerd == "up":
        return READY
    if systemd in _BOOTING:
        return STARTING
    if settled:
        return "dockerd not answering"
    return f"systemd {systemd}"


def failed_units(listing: str, *, limit: int = 160) -> str:
    """The failed units from FAILED_UNITS' output, "a.service, b.service"; "" if none, or if
    too long for a one-line message."""
    units = [line.split()[0] for line in listing.splitlines() if line.split()]
    text = ", ".join(units)
    return text if len(text) <= limit else ""
