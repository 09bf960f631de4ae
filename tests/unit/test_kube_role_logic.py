"""The Kubernetes roles' own decisions, run by real Ansible on this machine against files under
pytest's temporary directory only: the role's task files are included with the facts their
Preflight would have read standing in, so what is judged is the roles' own Jinja.

- kube_control_plane keeps a site's --audit-policy-file, --audit-log-path, --request-timeout and
  --encryption-provider-config (and mounts or chmods nothing of the site's); a site's allowed TLS
  cipher suites are kept, not widened (findings 2, 5, 6, 7).
- kube_kubelet keeps a site's allowed tlsCipherSuites (5; decided by its plan module) and skips an
  optional EnvironmentFile that does not exist (9).
- A roll-back keeps the new encryption configuration beside its backup before restoring the old
  one, and shows neither (8)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

from . import test_kube_control_plane_plan as plan
from . import test_kube_kubelet_plan as kubelet_plan
from .test_kube_kubelet_preflight import PREFLIGHT
from .test_kube_manifest import km

ROOT = content_root()
FIXTURES = Path(__file__).parent.parent / "fixtures" / "k8s"
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the roles write root-owned files")

APISERVER_SUITES = yaml.safe_load(
    (ROOT / "roles/kube_control_plane/defaults/main.yml").read_text()
)["kube_control_plane_tls_cipher_suites"]
KUBELET_SUITES = yaml.safe_load((ROOT / "roles/kube_kubelet/defaults/main.yml").read_text())[
    "kube_kubelet_tls_cipher_suites"
]


def run_play(
    tmp_path: Path, scenarios: dict[str, dict[str, Any]], tasks: list[Any], keep: list[str]
) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, Any]]]:
    """One play over local hosts, each with its scenario's variables (include_vars: above role
    defaults and vars); returns the run and each host's `keep` variables."""
    out = tmp_path / "out"
    out.mkdir()
    hosts = {}
    for name, variables in scenarios.items():
        scenario = tmp_path / f"{name}.vars.yml"
        scenario.write_text(yaml.safe_dump(variables))
        hosts[name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "scenario": str(scenario),
        }
    dump = "{{ {" + ", ".join(f"'{k}': {k} | default(None)" for k in keep) + "} | to_json }}"
    play = [
        {
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {"name": "Scenario", "ansible.builtin.include_vars": "{{ scenario }}"},
                *tasks,
                {
                    "name": "Dump",
                    "ansible.builtin.copy": {
                        "content": dump,
                        "dest": f"{out}/{{{{ inventory_hostname }}}}.json",
                    },
                    "check_mode": False,
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    env = os.environ | {
        "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }
    done = subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "inventory.yml", "play.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    found = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    return done, found


# --- kube_control_plane sections 1.2 and 3.2, kube_kubelet section 4.2 ---------------------------


def control_plane_scenario(base: Path, flags: dict[str, str]) -> dict[str, Any]:
    overrides = {
        "kube_control_plane_config_dir": f"{base}/casemate",
        "kube_control_plane_backup_dir": f"{base}/backup",
        "kube_control_plane_audit_log_path": f"{base}/audit/audit.log",
        "kube_control_plane_encryption_config_file": f"{base}/encryption/encryption-config.yaml",
    }
    # what main.yml's Preflight would have read and decided (the plan module's own function)
    decided = plan.PLAN.plan(
        plan.found(flags, {}),
        {"verified": [{"ok": True, "reason": ""}]},
        plan.settings(overrides),
        list(plan.PLAN.CONTROLS),
    )
    return overrides | {"kube_control_plane_plan": decided}


SITE_SUITES = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_RSA_WITH_AES_128_CBC_SHA"


@pytest.fixture(scope="module")
def sections(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("sections")
    site = tmp / "site-files"
    (site / "enc").mkdir(parents=True)
    (site / "enc").chmod(0o755)
    (site / "policy.yaml").write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n")
    site_key = {"name": "site", "secret": "c2l0ZS1rZXktbm90LWEtcmVhbC1vbmUtMzItYnl0ZXM="}
    (site / "enc" / "encryption.json").write_text(
        json.dumps(
            {
                "apiVersion": "apiserver.config.k8s.io/v1",
                "kind": "EncryptionConfiguration",
                "resources": [
                    {
                        "resources": ["secrets"],
                        "providers": [{"aescbc": {"keys": [site_key]}}, {"identity": {}}],
                    }
                ],
            }
        )
    )
    site_flags = {
        "--audit-policy-file": f"{site}/policy.yaml",
        "--audit-log-path": "/srv/audit/audit.log",
        "--request-timeout": "120s",
        "--tls-cipher-suites": SITE_SUITES,
        "--encryption-provider-config": f"{site}/enc/encryption.json",
    }
    scenarios = {
        "fresh": control_plane_scenario(tmp / "fresh", {}),
        "site": control_plane_scenario(tmp / "site", site_flags),
        "siteflag": control_plane_scenario(
            tmp / "siteflag", {"--tls-cipher-suites": "TLS_RSA_WITH_RC4_128_SHA"}
        ),
    }
    tasks = [
        {
            "name": "API server",
            "ansible.builtin.include_role": {
                "name": "kube_control_plane",
                "tasks_from": "section_1_2_apiserver.yml",
                "public": True,
            },
        },
        {
            "name": "Audit policy",
            "ansible.builtin.include_role": {
                "name": "kube_control_plane",
                "tasks_from": "section_3_2_audit.yml",
                "public": True,
            },
        },
        {
            "name": "The API server's manifest edit, as main.yml hands it to kube_node",
            "ansible.builtin.set_fact": {
                "kube_control_plane_apiserver_wanted": "{{ kube_control_plane_plan.edits.apiserver"
                " | combine({'annotations': kube_control_plane_annotations}) }}"
            },
        },
    ]
    done, found = run_play(tmp, scenarios, tasks, ["kube_control_plane_apiserver_wanted"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield {
        "tmp": tmp,
        "site": site,
        "site_flags": site_flags,
        "found": found,
        "stdout": done.stdout,
    }


def apiserver_after(wanted: dict[str, Any], flags: dict[str, str]) -> tuple[dict[str, Any], Any]:
    """The recorded kubeadm API server manifest with the site's flags, edited as the role wants."""
    doc = yaml.safe_load((FIXTURES / "kube-apiserver.yaml").read_text())
    doc["spec"]["containers"][0]["command"] += [f"{k}={v}" for k, v in flags.items()]
    new = km.edit_pod(
        doc,
        **{
            k: wanted[k]
            for k in ("flags", "defaults", "merge", "prune", "remove", "volumes", "annotations")
        },
    )
    return km.flag_values(new["spec"]["containers"][0]["command"]), new


def test_a_fresh_api_server_gets_casemate_audit_files_timeout_and_key(
    sections: dict[str, Any],
) -> None:
    tmp = sections["tmp"]
    wanted = sections["found"]["fresh"]["kube_control_plane_apiserver_wanted"]
    flags, pod = apiserver_after(wanted, {})
    assert flags["--audit-policy-file"] == f"{tmp}/fresh/casemate/audit-policy.yaml"
    assert flags["--audit-log-path"] == f"{tmp}/fresh/audit/audit.log"
    assert flags["--request-timeout"] == "300s"
    assert flags["--tls-cipher-suites"] == ",".join(APISERVER_SUITES)
    assert flags["--encryption-provider-config"] == f"{tmp}/fresh/encryption/encryption-config.yaml"
    mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert {f"{tmp}/fresh/casemate", f"{tmp}/fresh/audit", f"{tmp}/fresh/encryption"} <= mounts
    assert (tmp / "fresh/casemate/audit-policy.yaml").is_file()
    assert stat.S_IMODE((tmp / "fresh/encryption").stat().st_mode) == 0o700


def test_a_site_audit_policy_and_log_path_are_kept_and_not_mounted(
    sections: dict[str, Any],
) -> None:
    tmp, site = sections["tmp"], sections["site"]
    wanted = sections["found"]["site"]["kube_control_plane_apiserver_wanted"]
    assert (
        "--audit-policy-file" not in wanted["flags"] and "--audit-log-path" not in wanted["flags"]
    )
    flags, pod = apiserver_after(wanted, sections["site_flags"])
    assert flags["--audit-policy-file"] == f"{site}/policy.yaml"
    assert flags["--audit-log-path"] == "/srv/audit/audit.log"
    # casemate writes no policy of its own there, and mounts only what it writes (the admission
    # configuration's directory)
    assert not (tmp / "site/casemate/audit-policy.yaml").exists()
    assert not (tmp / "site/audit").exists()
    assert [v["name"] for v in wanted["volumes"]] == ["casemate-config"]
    hosts = {v["hostPath"]["path"] for v in pod["spec"]["volumes"]}
    assert not {"/srv/audit", str(site), f"{site}/enc"} & hosts
    assert "casemate/audit-policy" not in wanted["annotations"]


def test_a_site_request_timeout_is_kept(sections: dict[str, Any]) -> None:
    wanted = sections["found"]["site"]["kube_control_plane_apiserver_wanted"]
    flags, _ = apiserver_after(wanted, sections["site_flags"])
    assert flags["--request-timeout"] == "120s"


def test_a_site_encryption_config_directory_is_left_alone(sections: dict[str, Any]) -> None:
    site = sections["site"]
    wanted = sections["found"]["site"]["kube_control_plane_apiserver_wanted"]
    assert wanted["flags"]["--encryption-provider-config"] == f"{site}/enc/encryption.json"
    assert stat.S_IMODE((site / "enc").stat().st_mode) == 0o755  # not chmodded to 0700
    assert not (sections["tmp"] / "site/encryption").exists()  # casemate's own is not made


def test_a_site_cipher_subset_is_kept_not_widened(sections: dict[str, Any]) -> None:
    found = sections["found"]
    site = found["site"]["kube_control_plane_apiserver_wanted"]["flags"]["--tls-cipher-suites"]
    assert site == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"  # the CBC suite goes, nothing is added
    none_left = found["siteflag"]["kube_control_plane_apiserver_wanted"]["flags"][
        "--tls-cipher-suites"
    ]
    assert none_left == ",".join(APISERVER_SUITES)


def kubelet_decides(config: dict[str, Any], env_flags: dict[str, str]) -> dict[str, Any]:
    """What kube_kubelet_plan decides for this config.yaml and /etc/default/kubelet's flags."""
    env = [{"item": "/etc/default/kubelet", "flags": {"KUBELET_EXTRA_ARGS": env_flags}}]
    node = {"sysctls": {}, "container": "docker", "processes": {"kubelet": {"running": False}}}
    return kubelet_plan.PLAN.plan(  # type: ignore[no-any-return]
        {"config": {"kind": "KubeletConfiguration", **config}}, env, node, {},
        kubelet_plan.settings({}), ["all"], [],
    )  # fmt: skip


def test_a_kubelet_cipher_subset_is_kept_not_widened() -> None:
    site = ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_128_GCM_SHA256"]
    assert kubelet_decides({"tlsCipherSuites": site}, {})["settings"]["tlsCipherSuites"] == [
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
    ]
    # from the flag that overrides config.yaml (removed by the role), when config.yaml has none
    flag = {"--tls-cipher-suites": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}
    assert kubelet_decides({}, flag)["settings"]["tlsCipherSuites"] == [
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
    ]
    assert kubelet_decides({}, {})["settings"]["tlsCipherSuites"] == KUBELET_SUITES


def test_an_overridden_node_name_is_named_and_left_alone() -> None:
    """cis_k8s_4_2_7 is checked only: its notice comes with the kubelet's settings and names where
    the flag is, and only where there is one."""
    notices = [
        n
        for n in kubelet_decides({}, {"--hostname-override": "node-a"})["notes"]
        if "The kubelet is given --hostname-override" in n
    ]
    assert len(notices) == 1
    assert "--hostname-override=node-a in /etc/default/kubelet" in notices[0]
    assert not any("--hostname-override" in n for n in kubelet_decides({}, {})["notes"])


# --- kube_kubelet: which environment files are read and edited ------------------------------------


@pytest.mark.ansible
def test_a_missing_optional_environment_file_is_skipped(tmp_path: Path) -> None:
    present = tmp_path / "present.env"
    present.write_text("KUBELET_EXTRA_ARGS=\n")
    missing = tmp_path / "missing.env"  # EnvironmentFile=-/.../missing.env: systemd reports it
    unit = {"drop_in_paths": [], "environment_files": [str(missing), str(present)]}
    env_files = [str(tmp_path / "kubeadm-flags.env"), str(present)]
    tasks = [
        {  # the node facts module itself tells which exist (here of the unit's files too)
            "name": "Which files exist",
            "kube_node_facts": {"present": [*env_files, str(missing)]},
            "register": "kube_kubelet_read",
        },
    ]
    env = {"ANSIBLE_LIBRARY": str(ROOT / "roles/kube_node/library"),
           "ANSIBLE_MODULE_UTILS": f"{ROOT}/roles/kube_node/module_utils:{ROOT}/roles/host_common/module_utils"}  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        done, found = run_play(tmp_path, {"node": {}}, tasks, ["kube_kubelet_read"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    read = found["node"]["kube_kubelet_read"]["present"]
    assert PREFLIGHT.env_paths(unit, env_files, read) == [str(present)]


def test_kubelet_unit_file_and_every_dropin_are_the_kubelets_files() -> None:
    """cis_k8s_4_1_1/4_1_2 fix every file systemd loads for the kubelet (its unit file wherever it
    lives, and each drop-in), not one drop-in by name; a masked unit's /dev/null is none of them;
    and only where systemd does not know the unit are the usual directories searched."""
    unit_dir = "/usr/lib/systemd/system"
    known = {
        "load_state": "loaded",
        "fragment_path": f"{unit_dir}/kubelet.service",
        "drop_in_paths": [f"{unit_dir}/kubelet.service.d/10-kubeadm.conf",
                          "/etc/systemd/system/kubelet.service.d/20-site.conf"],
        "environment_files": [],
    }  # fmt: skip
    masked = known | {"load_state": "masked", "fragment_path": "/dev/null"}
    unknown = {"load_state": "not-found", "fragment_path": "", "drop_in_paths": [],
               "environment_files": []}  # fmt: skip
    dirs = ["/etc/systemd/system/", unit_dir]
    assert PREFLIGHT.unit_files(known, "kubelet", dirs) == [
        f"{unit_dir}/kubelet.service",
        *known["drop_in_paths"],
    ]
    assert PREFLIGHT.unit_files(masked, "kubelet", dirs) == known["drop_in_paths"]
    assert PREFLIGHT.unit_files(unknown, "kubelet", dirs) == [
        "/etc/systemd/system/kubelet.service", f"{unit_dir}/kubelet.service",
        "/etc/systemd/system/kubelet.service.d/*.conf", f"{unit_dir}/kubelet.service.d/*.conf",
    ]  # fmt: skip


# --- kube_node: a roll-back keeps the new encryption configuration --------------------------------


@pytest.mark.ansible
def test_a_rollback_keeps_the_new_encryption_config_and_shows_no_key(tmp_path: Path) -> None:
    manifests, backup = tmp_path / "manifests", tmp_path / "backup"
    manifests.mkdir()
    backup.mkdir()
    shutil.copy(FIXTURES / "etcd.yaml", manifests / "etcd.yaml")
    old_key, new_key = (
        "b2xkLWtleS0xMjM0NTY3ODkwMTIzNDU2Nzg5MDEyMzQ=",
        "bmV3LWtleS1hYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3g=",
    )
    (backup / "encryption-config.yaml.1").write_text(f"secret: {old_key}\n")
    (tmp_path / "encryption-config.yaml").write_text(f"secret: {new_key}\n")  # this run's new key
    scenario = {
        "kube_node_path": str(manifests / "etcd.yaml"),
        "kube_node_component": "casemate-test-no-such-component",
        "kube_node_edit": {"flags": {"--snapshot-count": "5000"}},
        "kube_node_backup_dir": str(backup),
        "kube_node_before": {"running": True, "pid": 1, "start": 1, "argv": []},  # "it ran before"
        "kube_node_health_url": "",
        "kube_node_timeout": 1,  # it never comes back: the roll-back runs
        "kube_node_restore": [
            {
                "backup": str(backup / "encryption-config.yaml.1"),
                "dest": str(tmp_path / "encryption-config.yaml"),
            }
        ],
        "kube_node_ids": "test",
    }
    tasks = [
        {
            "name": "Apply",
            "ansible.builtin.include_role": {
                "name": "kube_node",
                "tasks_from": "apply_manifest.yml",
            },
        }
    ]
    done, _ = run_play(tmp_path, {"node": scenario}, tasks, [])
    assert done.returncode != 0 and "rolled back" in done.stdout, done.stdout[-3000:]
    assert (manifests / "etcd.yaml").read_text() == (FIXTURES / "etcd.yaml").read_text()
    assert (tmp_path / "encryption-config.yaml").read_text() == f"secret: {old_key}\n"
    kept = backup / "encryption-config.yaml.1.rolled-back"
    assert kept.read_text() == f"secret: {new_key}\n"  # Secrets written with it stay readable
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert old_key not in done.stdout + done.stderr and new_key not in done.stdout + done.stderr
