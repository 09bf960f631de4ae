"""The built-in lab: Debian node containers with systemd and their own dockerd."""

from casemate.lab.nodes import LabNode, LabStatus, lab_build, lab_down, lab_status, lab_up

__all__ = ["LabNode", "LabStatus", "lab_build", "lab_down", "lab_status", "lab_up"]
