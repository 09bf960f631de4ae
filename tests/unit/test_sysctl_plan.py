"""The sysctl role's one facts call also says whether its apply steps run at all (issue 16): a
host whose sysctl.d file is exactly what the role writes (content, root:root, 0644) and whose
running values need no write skips them as one include; anything else takes them, as the former
layout did wherever a key was selected."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .role_modules import role_library

F = role_library("sysctl", "sysctl_facts")
CONTENT = "# written by casemate (sysctl role)\nnet.ipv4.tcp_syncookies = 1\n"


def written(tmp_path: Path, content: str = CONTENT, mode: int = 0o644) -> bool:
    path = tmp_path / "99-zz-casemate.conf"
    path.write_text(content)
    path.chmod(mode)
    ok: bool = F.written_as(str(path), CONTENT, 0o644)
    return ok


@pytest.mark.skipif(os.geteuid() != 0, reason="the file must be root's")
def test_a_compliant_host_skips_the_apply_steps(tmp_path: Path) -> None:
    assert written(tmp_path)
    assert not F.act_of(["net.ipv4.tcp_syncookies"], True, [])


def test_a_file_that_differs_in_content_or_mode_takes_the_apply_steps(tmp_path: Path) -> None:
    assert not written(tmp_path, CONTENT + "kernel.kptr_restrict = 1\n")
    assert not written(tmp_path, mode=0o664)
    assert not F.written_as(str(tmp_path / "missing.conf"), CONTENT, 0o644)
    assert F.act_of(["net.ipv4.tcp_syncookies"], False, [])


def test_a_running_value_to_write_takes_the_apply_steps() -> None:
    assert F.act_of(["net.ipv4.tcp_syncookies"], True, ["net.ipv4.tcp_syncookies=1"])


def test_no_selected_key_takes_no_step() -> None:
    assert not F.act_of([], False, ["net.ipv4.tcp_syncookies=1"])


def test_what_the_role_says_names_the_engine_evidence_then_the_notes() -> None:
    assert F.said(["dockerd: /usr/bin/dockerd"], ["kept: x"]) == [
        "container engine host: dockerd: /usr/bin/dockerd",
        "kept: x",
    ]
    assert F.said([], []) == ["no container engine on this host"]
