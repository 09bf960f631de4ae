"""Generic check kinds. Each kind says what it wants the probe to collect and judges the result."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from casemate.checks.all_of import AllOf
from casemate.checks.audit_rule import AuditRule
from casemate.checks.base import CheckKind
from casemate.checks.command_output import CommandOutput
from casemate.checks.conf_key import ConfKey
from casemate.checks.container_field import ContainerField
from casemate.checks.container_rule import ContainerRule
from casemate.checks.daemon_json_key import DaemonJsonKey
from casemate.checks.daemon_tls import DaemonTls
from casemate.checks.doc_field import DocField
from casemate.checks.file_exists import FileExists
from casemate.checks.file_mode import FileMode
from casemate.checks.file_owner import FileOwner
from casemate.checks.group_members import GroupMembers
from casemate.checks.image_rule import ImageRule
from casemate.checks.kubelet_config_key import KubeletConfigKey
from casemate.checks.listening import Listening
from casemate.checks.manifest_flag import ManifestFlag
from casemate.checks.mount_options import MountOptions
from casemate.checks.package_state import PackageState
from casemate.checks.process_flag import ProcessFlag
from casemate.checks.service_state import ServiceState
from casemate.checks.services_off import ServicesOff
from casemate.checks.ssh_host_keys import SshHostKeys
from casemate.checks.sshd_option import SshdOption
from casemate.checks.sysctl import Sysctl
from casemate.checks.tls_client_auth import TlsClientAuth


def builtin_kinds() -> Mapping[str, CheckKind[Any]]:
    """Every check kind casemate ships, by name."""
    kinds: list[CheckKind[Any]] = [
        AllOf(),
        AuditRule(),
        CommandOutput(),
        ConfKey(),
        ContainerField(),
        ContainerRule(),
        DaemonJsonKey(),
        DaemonTls(),
        DocField(),
        FileExists(),
        FileMode(),
        FileOwner(),
        GroupMembers(),
        ImageRule(),
        KubeletConfigKey(),
        Listening(),
        ManifestFlag(),
        MountOptions(),
        PackageState(),
        ProcessFlag(),
        ServiceState(),
        ServicesOff(),
        SshHostKeys(),
        SshdOption(),
        Sysctl(),
        TlsClientAuth(),
    ]
    return {k.name: k for k in kinds}
