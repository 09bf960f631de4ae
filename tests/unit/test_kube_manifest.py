"""The manifest editor (roles/kube_node/action_plugins/kube_manifest.py) on recorded kubeadm v1.32
files: only casemate's flags, volumes and keys change, the result parses, invalid results are
refused, and a second edit changes nothing."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from casemate.locations import content_root

ROOT = content_root()
FIXTURES = Path(__file__).parent.parent / "fixtures" / "k8s"


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


km = _load(
    ROOT / "roles" / "kube_node" / "action_plugins" / "kube_manifest.py", "kube_manifest_action"
)


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


def doc(name: str) -> Any:
    return yaml.safe_load(text(name))


def command(d: Any) -> list[str]:
    return list(d["spec"]["containers"][0]["command"])


def without_command(d: Any) -> Any:
    out = copy.deepcopy(d)
    out["spec"]["containers"][0].pop("command")
    return out


APISERVER = "kube-apiserver.yaml"
MANIFESTS = (
    "kube-apiserver.yaml",
    "kube-controller-manager.yaml",
    "kube-scheduler.yaml",
    "etcd.yaml",
)


@pytest.mark.parametrize("name", [*MANIFESTS, "kubelet-config.yaml"])
def test_recorded_files_read_back_byte_for_byte(name: str) -> None:
    # what the editor writes looks like what kubeadm wrote, so a diff shows only casemate's lines
    assert km.dump_yaml(km.load_yaml(text(name), name)) == text(name)


@pytest.mark.parametrize("name", MANIFESTS)
def test_recorded_manifests_are_valid_pods(name: str) -> None:
    km.validate_pod(doc(name))


def test_flag_added_at_its_sorted_place() -> None:
    new = km.edit_pod(doc(APISERVER), flags={"--profiling": False})
    cmd = command(new)
    assert "--profiling=false" in cmd
    assert cmd[1:] == sorted(cmd[1:])  # kubeadm sorts its flags; the new one sits among them
    assert [c for c in cmd if c != "--profiling=false"] == command(doc(APISERVER))


def test_flag_replaced_once() -> None:
    start = doc(APISERVER)
    start["spec"]["containers"][0]["command"] += ["--profiling=true", "--profiling", "true"]
    cmd = command(km.edit_pod(start, flags={"--profiling": "false"}))
    assert [c for c in cmd if c.startswith("--profiling")] == ["--profiling=false"]
    assert "true" not in cmd  # the value of the `--profiling true` pair went with it


def test_list_flag_merged_deduplicated_order_kept() -> None:
    start = doc(APISERVER)
    cmd0 = start["spec"]["containers"][0]["command"]
    cmd0[cmd0.index("--enable-admission-plugins=NodeRestriction")] = (
        "--enable-admission-plugins=NodeRestriction,PodSecurity,NodeRestriction"
    )
    merge = {
        "--enable-admission-plugins": ["EventRateLimit", "NodeRestriction", "AlwaysPullImages"]
    }
    flags = km.flag_values(command(km.edit_pod(start, merge=merge)))
    assert flags["--enable-admission-plugins"] == (
        "NodeRestriction,PodSecurity,EventRateLimit,AlwaysPullImages"
    )


def test_key_value_items_replace_their_key() -> None:
    merged = km.merge_items(
        "Foo=true,RotateKubeletServerCertificate=false", ["RotateKubeletServerCertificate=true"]
    )
    assert merged == "Foo=true,RotateKubeletServerCertificate=true"


def test_absent_list_flag_is_created_and_empty_merge_adds_nothing() -> None:
    cmd = command(km.edit_pod(doc(APISERVER), merge={"--authorization-mode": ["Node", "RBAC"]}))
    assert km.flag_values(cmd)["--authorization-mode"] == "Node,RBAC"
    cmd = command(km.edit_pod(doc(APISERVER), merge={"--disable-admission-plugins": []}))
    assert "--disable-admission-plugins" not in km.flag_values(cmd)


def test_prune_removes_items_and_an_emptied_flag() -> None:
    start = doc(APISERVER)
    start["spec"]["containers"][0]["command"] += [
        "--disable-admission-plugins=ServiceAccount",
        "--authorization-mode=AlwaysAllow,Node,RBAC",
    ]
    start["spec"]["containers"][0]["command"].remove("--authorization-mode=Node,RBAC")
    new = km.edit_pod(
        start,
        prune={
            "--disable-admission-plugins": ["ServiceAccount", "NamespaceLifecycle"],
            "--authorization-mode": ["AlwaysAllow"],
        },
    )
    flags = km.flag_values(command(new))
    assert "--disable-admission-plugins" not in flags
    assert flags["--authorization-mode"] == "Node,RBAC"


def test_flag_removed_in_both_spellings() -> None:
    start = doc(APISERVER)
    start["spec"]["containers"][0]["command"] += [
        "--token-auth-file=/etc/tokens.csv",
        "--token-auth-file",
        "/etc/other.csv",
    ]
    cmd = command(km.edit_pod(start, remove=["--token-auth-file"]))
    assert cmd == command(doc(APISERVER))


def test_defaults_fill_only_absent_flags() -> None:
    new = km.edit_pod(
        doc(APISERVER),
        defaults={
            "--client-ca-file": "/elsewhere/ca.crt",
            "--kubelet-certificate-authority": "/ca.crt",
        },
    )
    flags = km.flag_values(command(new))
    assert flags["--client-ca-file"] == "/etc/kubernetes/pki/ca.crt"  # the site's value stays
    assert flags["--kubelet-certificate-authority"] == "/ca.crt"


AUDIT_LOG = {
    "name": "audit-log",
    "hostPath": "/var/log/kubernetes/audit",
    "mountPath": "/var/log/kubernetes/audit",
    "type": "DirectoryOrCreate",
}
AUDIT_POLICY = {
    "name": "audit-policy",
    "hostPath": "/etc/kubernetes/audit",
    "mountPath": "/etc/kubernetes/audit",
    "type": "DirectoryOrCreate",
    "readOnly": True,
}


def test_volume_and_mount_added_once() -> None:
    once = km.edit_pod(doc(APISERVER), volumes=[AUDIT_LOG, AUDIT_POLICY])
    twice = km.edit_pod(once, volumes=[AUDIT_LOG, AUDIT_POLICY])
    assert twice == once
    volumes = once["spec"]["volumes"]
    mounts = once["spec"]["containers"][0]["volumeMounts"]
    assert [v["name"] for v in volumes].count("audit-log") == 1
    assert {
        "hostPath": {"path": "/etc/kubernetes/audit", "type": "DirectoryOrCreate"},
        "name": "audit-policy",
    } in volumes
    assert {
        "mountPath": "/etc/kubernetes/audit",
        "name": "audit-policy",
        "readOnly": True,
    } in mounts
    assert {"mountPath": "/var/log/kubernetes/audit", "name": "audit-log"} in mounts  # read-write
    assert len(volumes) == len(doc(APISERVER)["spec"]["volumes"]) + 2
    assert [v["name"] for v in volumes] == sorted(v["name"] for v in volumes)


def test_a_site_mount_of_the_same_directory_is_reused() -> None:
    start = km.edit_pod(doc(APISERVER), volumes=[AUDIT_POLICY | {"name": "site-audit"}])
    again = km.edit_pod(start, volumes=[AUDIT_POLICY])
    assert again == start


def test_a_mount_path_taken_by_another_directory_is_refused() -> None:
    with pytest.raises(km.ManifestError, match="already mounted"):
        km.edit_pod(doc(APISERVER), volumes=[AUDIT_POLICY | {"mountPath": "/etc/kubernetes/pki"}])


def _with_site_volume(volume: dict[str, Any], mount: dict[str, Any]) -> Any:
    start = doc(APISERVER)
    start["spec"]["volumes"].append(volume)
    start["spec"]["containers"][0]["volumeMounts"].append(mount)
    km.validate_pod(start)
    return start


def test_a_site_volume_of_the_same_name_with_another_source_is_refused() -> None:
    site = _with_site_volume(
        {"hostPath": {"path": "/srv/audit", "type": "DirectoryOrCreate"}, "name": "audit-log"},
        {"mountPath": "/srv/audit", "name": "audit-log"},
    )
    before = copy.deepcopy(site)
    with pytest.raises(
        km.ManifestError, match="already has a volume 'audit-log' \\(hostPath /srv/audit\\)"
    ):
        km.edit_pod(site, volumes=[AUDIT_LOG])
    assert site == before  # nothing of the site's was touched
    # through plan_edit, as the action runs it: refused, nothing to write
    with pytest.raises(km.ManifestError, match="refusing to replace it"):
        km.plan_edit("pod", km.dump_yaml(site), {"volumes": [AUDIT_LOG]})
    # not a hostPath at all
    other = _with_site_volume(
        {"configMap": {"name": "audit"}, "name": "audit-log"},
        {"mountPath": "/etc/audit-cm", "name": "audit-log"},
    )
    with pytest.raises(km.ManifestError, match="configMap"):
        km.edit_pod(other, volumes=[AUDIT_LOG])


def test_a_site_mount_of_the_same_name_elsewhere_is_refused() -> None:
    site = _with_site_volume(
        {"hostPath": {"path": "/var/log/kubernetes/audit"}, "name": "audit-log"},
        {"mountPath": "/audit", "name": "audit-log"},
    )
    with pytest.raises(km.ManifestError, match="already mounted at /audit"):
        km.edit_pod(site, volumes=[AUDIT_LOG])


def test_a_site_volume_of_the_same_name_and_path_is_kept_as_it_is() -> None:
    site = _with_site_volume(
        {
            "hostPath": {"path": "/var/log/kubernetes/audit/", "type": "Directory"},
            "name": "audit-log",
        },
        {"mountPath": "/var/log/kubernetes/audit", "name": "audit-log"},
    )
    assert km.edit_pod(site, volumes=[AUDIT_LOG]) == site


def test_mount_paths_are_compared_normalised() -> None:
    # a site mount written with a trailing slash is the same directory: reused, not mounted twice
    site = _with_site_volume(
        {"hostPath": {"path": "/var/log/kubernetes/audit/"}, "name": "site-audit"},
        {"mountPath": "/var/log/kubernetes/audit/", "name": "site-audit"},
    )
    assert km.edit_pod(site, volumes=[AUDIT_LOG]) == site
    slashed = AUDIT_LOG | {
        "hostPath": "/var/log/kubernetes/audit/",
        "mountPath": "/var/log/kubernetes/audit/",
    }
    once = km.edit_pod(doc(APISERVER), volumes=[AUDIT_LOG])
    assert km.edit_pod(once, volumes=[slashed]) == once
    # a pod that mounts one directory twice, once with a slash, is not valid
    twice = copy.deepcopy(once)
    twice["spec"]["containers"][0]["volumeMounts"].append(
        {"mountPath": "/var/log/kubernetes/audit/", "name": "audit-log"}
    )
    with pytest.raises(km.ManifestError, match="used twice"):
        km.validate_pod(twice)


def test_unknown_fields_are_kept() -> None:
    start = doc(APISERVER)
    start["spec"]["futureField"] = {"nested": [1, 2]}
    start["spec"]["containers"][0]["x-site"] = "kept"
    start["metadata"]["labels"]["team"] = "blue"
    new = km.edit_pod(start, flags={"--profiling": False}, volumes=[AUDIT_LOG])
    assert new["spec"]["futureField"] == {"nested": [1, 2]}
    assert new["spec"]["containers"][0]["x-site"] == "kept"
    assert new["metadata"]["labels"]["team"] == "blue"
    assert start["spec"]["containers"][0]["command"] == command(doc(APISERVER))  # input untouched


@pytest.mark.parametrize(
    ("change", "kwargs", "reason"),
    [
        (lambda d: d.update(kind="Deployment"), {}, "not a v1 Pod"),
        (lambda d: d["spec"]["containers"][0].update(command="kube-apiserver"), {}, "command"),
        (
            lambda d: d["spec"]["containers"][0]["volumeMounts"].append(
                {"name": "ghost", "mountPath": "/x"}
            ),
            {},
            "has no volume",
        ),
        (lambda d: None, {"flags": {"profiling": "false"}}, "not a flag name"),
        (lambda d: None, {"volumes": [{"name": "v", "hostPath": "/a"}]}, "mountPath"),
        (lambda d: None, {"container": "sidecar"}, "no container named"),
        (
            lambda d: d["spec"]["containers"][0].update(args=["--profiling=true"]),
            {"flags": {"--profiling": False}},
            "args",
        ),
    ],
)
def test_invalid_input_or_result_is_refused(
    change: Any, kwargs: dict[str, Any], reason: str
) -> None:
    start = doc(APISERVER)
    change(start)
    with pytest.raises(km.ManifestError, match=reason):
        km.edit_pod(start, **kwargs)


def test_a_change_that_breaks_the_pod_is_refused() -> None:
    # two mounts on one path: the kubelet would reject the pod, so the editor refuses to write it
    bad = dict(AUDIT_LOG, name="second", hostPath="/var/log/other")
    start = km.edit_pod(doc(APISERVER), volumes=[AUDIT_LOG])
    with pytest.raises(km.ManifestError):
        km.edit_pod(start, volumes=[bad])
    broken = copy.deepcopy(start)
    broken["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "audit-log", "mountPath": "/var/log/kubernetes/audit"}
    )
    with pytest.raises(km.ManifestError, match="used twice"):
        km.validate_pod(broken)


EDIT = {
    "flags": {"--profiling": False, "--audit-log-path": "/var/log/kubernetes/audit/audit.log"},
    "merge": {"--enable-admission-plugins": ["EventRateLimit", "AlwaysPullImages"]},
    "prune": {"--enable-admission-plugins": ["AlwaysAdmit"]},
    "remove": ["--token-auth-file"],
    "defaults": {"--kubelet-certificate-authority": "/etc/kubernetes/pki/ca.crt"},
    "volumes": [AUDIT_LOG],
    "annotations": {"casemate/audit-policy": "0123456789abcdef"},
}


def test_output_parses_and_only_our_flags_differ() -> None:
    before = text(APISERVER)
    after, changed, facts = km.plan_edit("pod", before, EDIT)
    assert changed
    old, new = yaml.safe_load(before), yaml.safe_load(after)
    km.validate_pod(new)
    assert set(facts["changed_flags"]) == {
        "--profiling",
        "--audit-log-path",
        "--enable-admission-plugins",
        "--kubelet-certificate-authority",
    }
    old_flags, new_flags = km.flag_values(command(old)), km.flag_values(command(new))
    for name, value in old_flags.items():
        if name not in facts["changed_flags"]:
            assert new_flags[name] == value, name  # every kubeadm flag we do not own is unchanged
    assert set(new_flags) - set(old_flags) == {
        "--profiling",
        "--audit-log-path",
        "--kubelet-certificate-authority",
    }
    assert facts["expect_present"] == [
        f"{n}={new_flags[n]}" for n in sorted(facts["changed_flags"])
    ]
    assert facts["expect_absent"] == []
    # beyond the command: only our volume, mount and annotation were added
    rest_old, rest_new = without_command(old), without_command(new)
    rest_new["spec"]["volumes"].remove(
        {
            "hostPath": {"path": "/var/log/kubernetes/audit", "type": "DirectoryOrCreate"},
            "name": "audit-log",
        }
    )
    rest_new["spec"]["containers"][0]["volumeMounts"].remove(
        {"mountPath": "/var/log/kubernetes/audit", "name": "audit-log"}
    )
    del rest_new["metadata"]["annotations"]["casemate/audit-policy"]
    assert rest_new == rest_old
    assert facts["probe"] == {
        "scheme": "https",
        "host": "172.18.0.2",
        "port": 6443,
        "path": "/readyz",
    }


def test_second_edit_changes_nothing() -> None:
    after, _, _ = km.plan_edit("pod", text(APISERVER), EDIT)
    again, changed, facts = km.plan_edit("pod", after, EDIT)
    assert not changed
    assert again == after
    assert facts["changed_flags"] == []
    # formatting alone is no reason to write: the same data in other spelling stays as it is
    respelled = yaml.safe_dump(yaml.safe_load(after), default_flow_style=True)
    assert km.plan_edit("pod", respelled, EDIT)[1] is False


def test_removed_flags_are_expected_absent() -> None:
    start = text(APISERVER).replace(
        "    - --secure-port=6443\n", "    - --secure-port=6443\n    - --token-auth-file=/t.csv\n"
    )
    _, changed, facts = km.plan_edit("pod", start, {"remove": ["--token-auth-file"]})
    assert changed
    assert facts["expect_absent"] == ["--token-auth-file"]


def test_missing_file_is_refused_unless_casemate_owns_it() -> None:
    with pytest.raises(km.ManifestError, match="does not exist"):
        km.plan_edit("pod", None, EDIT)


# --- configuration documents (the kubelet's config.yaml) ----------------------------------------

KUBELET = "kubelet-config.yaml"
SETTINGS = {
    "authentication": {
        "anonymous": {"enabled": False},
        "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
    },
    "readOnlyPort": 0,
    "streamingConnectionIdleTimeout": "5m",
    "featureGates": {"RotateKubeletServerCertificate": True},
    "tlsCipherSuites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"],
}


def test_config_keys_merged_every_other_key_kept() -> None:
    old = doc(KUBELET)
    after, changed, facts = km.plan_edit(
        "config", text(KUBELET), {"settings": SETTINGS, "kind": "KubeletConfiguration"}
    )
    new = yaml.safe_load(after)
    assert changed
    assert (
        new["authentication"]["webhook"] == old["authentication"]["webhook"]
    )  # a sibling key stays
    assert new["streamingConnectionIdleTimeout"] == "5m"
    assert new["featureGates"] == {"RotateKubeletServerCertificate": True}
    assert list(new) == sorted(new)  # new keys at their sorted place, like kubeadm's file
    for key in set(old) - {"streamingConnectionIdleTimeout"}:
        if key != "authentication":
            assert new[key] == old[key], key
    assert facts["config"] == new
    assert (
        km.plan_edit("config", after, {"settings": SETTINGS, "kind": "KubeletConfiguration"})[1]
        is False
    )


def test_config_keys_removed_and_wrong_kind_refused() -> None:
    after, _, _ = km.plan_edit(
        "config", text(KUBELET), {"remove_keys": ["authentication.webhook.cacheTTL", "nope.x"]}
    )
    assert "cacheTTL" not in yaml.safe_load(after)["authentication"]["webhook"]
    with pytest.raises(km.ManifestError, match="not a KubeletConfiguration"):
        km.plan_edit(
            "config", text(APISERVER), {"settings": {"a": 1}, "kind": "KubeletConfiguration"}
        )


def test_own_document_created_then_left_alone() -> None:
    policy = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}
    created, changed, facts = km.plan_edit(
        "config", None, {"document": policy, "header": "written by casemate"}
    )
    assert changed
    assert created.startswith("# written by casemate\n")
    assert yaml.safe_load(created) == policy
    again, changed, facts2 = km.plan_edit(
        "config", created, {"document": policy, "header": "written by casemate"}
    )
    assert (again, changed, facts2) == (created, False, facts)
    respelled = yaml.safe_dump(policy, default_flow_style=True)
    assert km.plan_edit("config", respelled, {"document": policy})[1] is False
    with pytest.raises(km.ManifestError, match="apiVersion and kind"):
        km.plan_edit("config", None, {"document": {"rules": []}})


# --- environment files (kubeadm-flags.env, /etc/default/kubelet) --------------------------------

VARIABLES = ["KUBELET_KUBEADM_ARGS", "KUBELET_EXTRA_ARGS"]


def test_env_flags_removed_other_lines_untouched() -> None:
    start = (
        "# site comment\n"
        'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock '
        '--anonymous-auth=true --read-only-port 10255 --feature-gates=Foo=true,RotateKubeletServerCertificate=false"\n'
        "OTHER=--anonymous-auth=true\n"
    )
    after, changed, facts = km.plan_edit(
        "env",
        start,
        {
            "variables": VARIABLES,
            "remove": ["--anonymous-auth", "--read-only-port"],
            "prune": {"--feature-gates": ["RotateKubeletServerCertificate"]},
        },
    )
    assert changed
    lines = after.splitlines()
    assert lines[0] == "# site comment"
    assert lines[2] == "OTHER=--anonymous-auth=true"  # not a kubelet variable
    assert lines[1] == (
        'KUBELET_KUBEADM_ARGS="--container-runtime-endpoint=unix:///run/containerd/containerd.sock '
        '--feature-gates=Foo=true"'
    )
    assert facts["flags"]["KUBELET_KUBEADM_ARGS"] == {
        "--container-runtime-endpoint": "unix:///run/containerd/containerd.sock",
        "--feature-gates": "Foo=true",
    }


def test_recorded_env_files_need_no_change() -> None:
    for name in ("kubeadm-flags.env", "default-kubelet"):
        after, changed, _ = km.plan_edit(
            "env", text(name), {"variables": VARIABLES, "remove": ["--anonymous-auth"]}
        )
        assert (after, changed) == (text(name), False)


def test_env_unquoted_value_gets_quotes_only_when_needed() -> None:
    after, _, _ = km.plan_edit(
        "env",
        "KUBELET_EXTRA_ARGS=--node-ip=10.0.0.1 --seccomp-default=false\n",
        {"variables": VARIABLES, "remove": ["--seccomp-default"]},
    )
    assert after == "KUBELET_EXTRA_ARGS=--node-ip=10.0.0.1\n"


def test_backup_dir_must_lie_outside_the_file_directory() -> None:
    assert km._inside("/etc/kubernetes/manifests", "/etc/kubernetes/manifests")
    assert km._inside("/etc/kubernetes/manifests/old", "/etc/kubernetes/manifests/")
    assert not km._inside("/var/backups/casemate/etcd", "/etc/kubernetes/manifests")
    assert not km._inside("/etc/kubernetes/manifests-old", "/etc/kubernetes/manifests")


# --- one copy of the code, visible to every Kubernetes role -------------------------------------

ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")


def _play_etcd(tmp_path: Path, roles_path: str, run: str) -> subprocess.CompletedProcess[str]:
    """The etcd role in check mode on this machine, its manifest a path that does not exist: its
    first task (etcd_decide: kube_node's node read, the editor's code, then etcd's plan) refuses
    the host, which it can only do where it reached kube_node's code."""
    play = tmp_path / "play.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles: [etcd]\n")
    env = os.environ | {
        "ANSIBLE_ROLES_PATH": roles_path,
        "ANSIBLE_LOCALHOST_WARNING": "False",
        # each run its own: Ansible caches the modules it built there
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / run / "ansible-local"),
        "ANSIBLE_HOME": str(tmp_path / run / "ansible-home"),
    }
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-i", "localhost,", "-c", "local", "--check",
         "-e", f"ansible_python_interpreter={sys.executable}",
         "-e", f"etcd_manifest_path={tmp_path / 'none' / 'etcd.yaml'}", str(play)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


@pytest.mark.ansible
def test_the_editor_exists_once_and_reaches_an_etcd_only_play(tmp_path: Path) -> None:
    roles = ROOT / "roles"
    copies = sorted(p.relative_to(roles) for p in roles.glob("*/*/kube_manifest.py"))
    assert copies == [
        Path("kube_node/action_plugins/kube_manifest.py"),
        Path("kube_node/library/kube_manifest.py"),
    ]
    ok = _play_etcd(tmp_path, str(roles), "etcd")
    assert "this role hardens etcd run as a kubeadm static pod" in ok.stdout, ok.stdout + ok.stderr
