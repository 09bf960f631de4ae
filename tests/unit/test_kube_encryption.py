"""The EncryptionConfiguration module of kube_control_plane (cis_k8s_1_2_27, cis_k8s_1_2_28), run
as Ansible runs it: a key made once and kept, never in the module's output, a weak configuration
strengthened without losing its keys, and nothing written in check mode."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from casemate.locations import content_root

MODULE = content_root() / "roles" / "kube_control_plane" / "library" / "kube_encryption_config.py"


def run(tmp: Path, **args: Any) -> tuple[dict[str, Any], str]:
    spec = tmp / "args.json"
    spec.write_text(
        json.dumps({"ANSIBLE_MODULE_ARGS": {"backup_dir": str(tmp / "backup"), **args}})
    )
    done = subprocess.run(
        [sys.executable, str(MODULE), str(spec)], capture_output=True, text=True, check=False
    )
    return json.loads(done.stdout), done.stdout + done.stderr


def secrets(path: Path) -> list[str]:
    return re.findall(r"secret: (\S+)", path.read_text())


def test_key_made_once_kept_and_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "enc" / "config.yaml"
    first, out = run(tmp_path, path=str(path))
    assert first["changed"] and first["first_providers"] == {"secrets": "aescbc"}
    (key,) = secrets(path)
    assert len(base64.b64decode(key)) == 32
    assert key not in out
    assert path.stat().st_mode & 0o777 == 0o600
    assert (path.parent.stat().st_mode & 0o777) == 0o700
    loaded = yaml.safe_load(path.read_text())
    assert loaded["kind"] == "EncryptionConfiguration"
    assert list(loaded["resources"][0]["providers"][1]) == [
        "identity"
    ]  # data written before stays readable
    second, out2 = run(tmp_path, path=str(path))
    assert not second["changed"]
    assert secrets(path) == [key]  # a new key would make existing Secrets unreadable
    assert second["fingerprint"] == first["fingerprint"]
    assert key not in out2


def test_weak_configuration_strengthened_keeping_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    old: dict[str, Any] = {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [
                    {"identity": {}},
                    {"aesgcm": {"keys": [{"name": "casemate-1", "secret": "b2xk"}]}},
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(old))
    result, out = run(tmp_path, path=str(path), provider="secretbox")
    assert result["changed"]
    assert result["first_providers"] == {"secrets": "secretbox"}
    new = yaml.safe_load(path.read_text())
    providers = new["resources"][0]["providers"]
    assert [next(iter(p)) for p in providers] == ["secretbox", "identity", "aesgcm"]
    # no clash with the old key's name
    assert providers[0]["secretbox"]["keys"][0]["name"] == "casemate-2"
    assert providers[2] == old["resources"][0]["providers"][1]
    assert "b2xk" not in out and providers[0]["secretbox"]["keys"][0]["secret"] not in out
    backup = Path(result["backup_file"])
    assert yaml.safe_load(backup.read_text()) == old
    assert backup.stat().st_mode & 0o777 == 0o600


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "enc" / "config.yaml"
    result, _ = run(tmp_path, path=str(path), _ansible_check_mode=True)
    assert result["changed"]
    assert not path.exists()


def test_a_file_that_is_not_an_encryption_configuration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\n")
    result, _ = run(tmp_path, path=str(path))
    assert result["failed"]
    assert "refusing to change it" in result["msg"]
    assert path.read_text() == "apiVersion: v1\nkind: Pod\n"
