"""The probe answers the catalog commands that grep one program's output (modprobe -c for
cm_host_4_14, apt-config dump for cm_host_4_21) by running the program and doing the greps itself
(probe/remote.py: GREPPED_ANSWERS). Each command is run here in sh, with grep, against a stand-in
program printing recorded-looking and awkward outputs, and the probe's answer must be exactly what
the shell printed: same exit status, same lines, nothing on stderr."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds
from casemate.verify import wanted_probes

from .assembled import probe_module

remote = probe_module()

MODULES = remote.UNLOADABLE_MODULES
MODPROBE_COMMAND = next(c for c in remote.GREPPED_ANSWERS if "modprobe -c" in c)
APT_COMMAND = next(c for c in remote.GREPPED_ANSWERS if "apt-config dump" in c)

COMPLIANT_MODPROBE = "".join(f"install {m} /bin/false\nblacklist {m}\n" for m in MODULES)
MODPROBE_OUTPUTS = [
    "",
    "\n\n",
    COMPLIANT_MODPROBE,
    COMPLIANT_MODPROBE + "\n\n\n",  # trailing empty lines: $(...) drops them
    "# This file was created by casemate\ninstall usb_storage /usr/bin/true\n"
    "install dccp /bin/false \n"  # a trailing space: not the whole line
    "install sctp  /bin/false\n"
    "install rds /bin/falsey\n"
    "install tipc /usr/bin/false\nblacklist tipc\n"
    "blacklist rds \n# blacklist hfs\nblacklist hfsplus\nblacklist jffs2\r\n"
    "install udf /bin/true\r\n"
    "options snd index=\xe9\n"  # not UTF-8 (written as latin-1 below)
    "alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage\n",
    "install usb_storage /bin/false\nblacklist usb-storage\ninstall cramfs /sbin/false\n",
]

APT_DUMP = (
    'APT "";\nAPT::Architecture "amd64";\n'
    'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'
    'Unattended-Upgrade::Origins-Pattern "";\n'
    'Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename}'
    ',label=Debian-Security";\n'
)
APT_OUTPUTS = [
    "",
    APT_DUMP,
    APT_DUMP.replace('Lists "1"', 'Lists "0"').replace('Upgrade "1"', 'Upgrade "7"'),
    APT_DUMP.replace("label=Debian-Security", "label=Debian"),
    'APT::Periodic::Update-Package-Lists "always";\n'
    'Unattended-Upgrade::Allowed-Origins:: "Debian bookworm-security";\n',
    ' APT::Periodic::Update-Package-Lists "1";\n'
    'Unattended-Upgrade::Allowed-Origins:: "${distro_id}:${distro_codename}-security";\n\n',
]


def _stand_in(tmp_path: Path, name: str, output: str | None, status: int = 0) -> Path:
    """A PATH holding grep and, unless `output` is None, a program `name` printing `output` (as
    latin-1 bytes) and exiting `status`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    grep, cat = shutil.which("grep"), shutil.which("cat")
    assert grep is not None and cat is not None
    (bin_dir / "grep").symlink_to(grep)
    if output is not None:
        (tmp_path / "output").write_bytes(output.encode("latin-1"))
        program = bin_dir / name
        program.write_text(
            f"#!/bin/sh\n{cat} {tmp_path / 'output'}\necho said >&2\nexit {status}\n"
        )
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _shell_and_probe(
    command: str, bin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, Any], dict[str, Any]]:
    monkeypatch.setenv("PATH", str(bin_dir))
    shell: dict[str, Any] = remote.run_command(command, shell=True)
    shell.pop("error", None)  # as c_cmd keeps it
    answered = remote.c_cmd(command)
    assert answered.pop("in_probe") is True
    return shell, answered


def test_every_command_answered_with_greps_in_the_probe_is_one_the_catalog_asks() -> None:
    entries = list(load_catalog(None, builtin_kinds()).entries)
    asked = {p.arg for p in wanted_probes(entries) if p.kind == "cmd"}
    assert set(remote.GREPPED_ANSWERS) <= asked, set(remote.GREPPED_ANSWERS) - asked
    assert f"for m in {' '.join(MODULES)};" in MODPROBE_COMMAND


@pytest.mark.parametrize("output", MODPROBE_OUTPUTS)
def test_modules_left_loadable_are_what_the_shell_prints(
    output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell, answered = _shell_and_probe(
        MODPROBE_COMMAND, _stand_in(tmp_path, "modprobe", output), monkeypatch
    )
    assert answered == shell
    assert shell["rc"] == 0 and shell["stderr"] == ""
    assert (shell["stdout"] == "") == (output.rstrip("\n") == COMPLIANT_MODPROBE.rstrip("\n"))


def test_a_compliant_modprobe_configuration_leaves_nothing_and_a_broken_one_names_each_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(_stand_in(tmp_path, "modprobe", COMPLIANT_MODPROBE)))
    assert remote.c_cmd(MODPROBE_COMMAND)["stdout"] == ""
    (tmp_path / "output").write_text(MODPROBE_OUTPUTS[4])
    said = remote.c_cmd(MODPROBE_COMMAND)["stdout"].splitlines()
    assert "usb_storage: not blacklisted" in said and "tipc: loadable" not in said
    assert {"dccp: loadable", "sctp: loadable", "rds: loadable", "udf: loadable"} <= set(said)


@pytest.mark.parametrize("output", APT_OUTPUTS)
def test_what_apt_leaves_out_is_what_the_shell_prints(
    output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shell, answered = _shell_and_probe(
        APT_COMMAND, _stand_in(tmp_path, "apt-config", output), monkeypatch
    )
    assert answered == shell
    assert (shell["stdout"] == "") == (output == APT_DUMP)


@pytest.mark.parametrize("command", [MODPROBE_COMMAND, APT_COMMAND])
@pytest.mark.parametrize("status", [1, None])  # the program fails; it is not there
def test_a_program_that_fails_or_is_missing_exits_2_as_in_the_shell(
    command: str, status: int | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "modprobe" if command == MODPROBE_COMMAND else "apt-config"
    output = None if status is None else "blacklist usb_storage\n"
    shell, answered = _shell_and_probe(
        command, _stand_in(tmp_path, name, output, status or 0), monkeypatch
    )
    assert answered == shell == {"rc": 2, "stdout": "", "stderr": ""}


def test_any_other_command_still_runs_in_the_shell() -> None:
    assert remote.grepped_answer("modprobe -c | grep -c install") is None
    assert "in_probe" not in remote.c_cmd("echo " + os.devnull)
