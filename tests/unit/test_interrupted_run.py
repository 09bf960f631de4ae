"""What the roles read to make an interrupted run converge (the lab proves the restarts and reloads
themselves, tests/lab/test_converge_lab.py): containerd's config as the gvisor role reads it, where
a runtime table without runc would leave the CRI plugin without its default runtime; and the sshd
reload of a file casemate wrote but sshd never loaded, whose rollback puts back the configuration
without casemate's options while the current file stays in the backup."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from casemate.locations import content_root

ROLES = content_root() / "roles"


def load(role: str, name: str) -> ModuleType:
    path = ROLES / role / "library" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"casemate_test_{role}_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


G = load("gvisor", "gvisor_facts")
F = load("sshd", "sshd_facts")
C = load("sshd", "sshd_commit")

CRI = 'plugins."io.containerd.grpc.v1.cri".containerd'
DEBIAN_CONTAINERD = """\
version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/usr/lib/cni"
"""


def test_containerd_config_names_its_runtimes_and_default(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(DEBIAN_CONTAINERD)
    assert G.containerd_config(str(config)) == {
        "runsc": {"runtime_type": "", "BinaryName": ""},
        "runtimes": [],
        "default": "runc",
    }
    config.write_text(
        DEBIAN_CONTAINERD
        + f'[{CRI}]\ndefault_runtime_name = "nvidia"  # a site\'s own\n'
        + f'[{CRI}.runtimes.runsc]\nruntime_type = "io.containerd.runc.v2"\n'
        + f'[{CRI}.runtimes.runsc.options]\nBinaryName = "/usr/bin/runsc"\n'
    )
    found = G.containerd_config(str(config))
    assert found["runsc"] == {
        "runtime_type": "io.containerd.runc.v2",
        "BinaryName": "/usr/bin/runsc",
    }
    assert found["runtimes"] == ["runsc"]  # no runc: the CRI plugin would refuse to load
    assert found["default"] == "nvidia"


def test_a_missing_containerd_config_names_nothing(tmp_path: Path) -> None:
    assert G.containerd_config(str(tmp_path / "none.toml"))["runtimes"] == []


def test_cri_plugin_status_is_read_from_ctr_plugins_ls() -> None:
    listing = (
        "TYPE                            ID                       PLATFORMS      STATUS\n"
        "io.containerd.grpc.v1           introspection            -              ok\n"
        "io.containerd.grpc.v1           cri                      linux/amd64    error\n"
    )
    assert G.cri_status(listing) == "error"
    assert G.cri_status(listing.replace("error", "ok")) == "ok"
    assert G.cri_status("") == ""


def planned(main: str, dropins: dict[str, str], managed: str) -> dict[str, object]:
    return {"main_text": main, "dropins": dropins, "managed_path": managed, "writes": {}}


def test_a_pending_dropin_rolls_back_to_no_dropin() -> None:
    p = {"config": "/etc/ssh/sshd_config"}
    dropin = "/etc/ssh/sshd_config.d/00-casemate-hardening.conf"
    other = "/etc/ssh/sshd_config.d/50-site.conf"
    before, target = F.without_casemate(
        p,
        planned(
            "Include /etc/ssh/sshd_config.d/*.conf\n", {dropin: "X 1\n", other: "Y 2\n"}, dropin
        ),
    )
    assert target == {dropin: None}
    assert before["dropins"] == {other: "Y 2\n"} and before["writes"] == {}


def test_a_pending_main_file_block_rolls_back_to_the_file_without_it() -> None:
    main = f"{F.BEGIN}\nPasswordAuthentication no\n{F.END}\nUsePAM yes\n"
    p = {"config": "/etc/ssh/sshd_config"}
    before, target = F.without_casemate(p, planned(main, {}, "/etc/ssh/sshd_config"))
    assert target == {"/etc/ssh/sshd_config": "UsePAM yes\n"}
    assert before["writes"]["/etc/ssh/sshd_config"]["content"] == "UsePAM yes\n"


def test_the_rollback_target_replaces_the_backup_and_the_current_file_is_kept(
    tmp_path: Path,
) -> None:
    dropin, main = tmp_path / "00-casemate.conf", tmp_path / "sshd_config"
    dropin.write_text("PasswordAuthentication no\n")
    main.write_text(f"{F.BEGIN}\nX 1\n{F.END}\nUsePAM yes\n")
    change = tmp_path / "change"
    change.mkdir()
    manifest = C.back_up(str(change), [str(dropin), str(main)])
    manifest = C.roll_back_to(str(change), manifest, {str(dropin): None, str(main): "UsePAM yes\n"})
    assert manifest["files"][0] == {"path": str(dropin), "existed": False, "current": "0"}
    assert manifest["files"][1]["saved"] == "target-1"
    assert (change / "files" / "0").read_text() == "PasswordAuthentication no\n"  # kept
    assert (change / "files" / "target-1").read_text() == "UsePAM yes\n"
    script = C.rollback_script(str(change), manifest, "ssh.service")
    assert f"rm -f {dropin}" in script
    assert f"cp -p {change / 'files' / 'target-1'} {main}" in script
    json.dumps(manifest)  # stored as the change's manifest.json
