"""kube_policies' RBAC review (5.1.x, manual) against a recorded cluster: a kubectl stand-in that
answers `get KIND -A -o json` and `auth can-i` from fixtures. Findings name their control; a
cluster with nothing to review gives no findings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from casemate.locations import content_root

REVIEW = content_root() / "roles" / "kube_policies" / "files" / "rbac-review.py"

KUBECTL = """\
import json, sys
args = sys.argv[1:]
cluster = json.load(open(%r))
if args[4:6] == ["auth", "can-i"]:
    print("yes" if "%%s %%s" %% (args[6], args[7]) in cluster["can"] else "no")
elif args[4] == "get":
    print(json.dumps({"items": cluster["items"].get(args[5], [])}))
else:
    sys.exit(1)
"""

CLEAN: dict[str, Any] = {
    "can": [],
    "items": {
        "clusterrolebindings": [
            {"kind": "ClusterRoleBinding", "metadata": {"name": "cluster-admin"},
             "roleRef": {"name": "cluster-admin"}, "subjects": [{"kind": "Group", "name": "system:masters"}]},
        ],
        "serviceaccounts": [
            {"metadata": {"name": "default", "namespace": "apps"}, "automountServiceAccountToken": False},
        ],
    },
}  # fmt: skip

RISKY: dict[str, Any] = {
    "can": ["get secrets", "create pods"],
    "items": {
        "clusterrolebindings": [
            *CLEAN["items"]["clusterrolebindings"],
            {"kind": "ClusterRoleBinding", "metadata": {"name": "ci-admin"}, "roleRef": {"name": "cluster-admin"},
             "subjects": [{"kind": "Group", "name": "system:masters"}]},
        ],
        "clusterroles": [
            {"kind": "ClusterRole", "metadata": {"name": "ops"},
             "rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]},
                       {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}]},
            {"kind": "ClusterRole", "metadata": {"name": "system:node"},
             "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]},
        ],
        "roles": [
            {"kind": "Role", "metadata": {"name": "binder", "namespace": "apps"},
             "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["bind"]}]},
        ],
        "serviceaccounts": [{"metadata": {"name": "default", "namespace": "apps"}}],
        "certificatesigningrequests": [
            {"metadata": {"name": "csr-1"}, "spec": {"signerName": "kubernetes.io/kubelet-serving",
                                                     "username": "system:node:w1"}, "status": {}},
        ],
    },
}  # fmt: skip


def review(tmp_path: Path, cluster: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "cluster.json"
    data.write_text(json.dumps(cluster))
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!{sys.executable}\n" + KUBECTL % str(data))
    kubectl.chmod(0o755)
    return subprocess.run(
        [sys.executable, str(REVIEW), str(kubectl), "/etc/kubernetes/admin.conf", "5s"],
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_clean_cluster_gives_no_findings(tmp_path: Path) -> None:
    done = review(tmp_path, CLEAN)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_each_risk_is_named_with_its_control(tmp_path: Path) -> None:
    done = review(tmp_path, RISKY)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == sorted(lines)  # stable output: the findings file changes only with the cluster
    ids = {line.split(":", 1)[0] for line in lines}
    assert ids == {
        "cis_k8s_1_2_5",
        "cis_k8s_5_1_1",
        "cis_k8s_5_1_2",
        "cis_k8s_5_1_3",
        "cis_k8s_5_1_4",
        "cis_k8s_5_1_5",
        "cis_k8s_5_1_7",
        "cis_k8s_5_1_8",
        "cis_k8s_5_1_10",  # a "*" resource in the core group includes nodes/proxy
        "cis_k8s_5_1_13",
    }
    assert "cis_k8s_5_1_1: ClusterRoleBinding ci-admin grants cluster-admin" in lines
    assert not any(
        "ClusterRole system:node " in line for line in lines
    )  # Kubernetes' own roles are left out


def test_no_answer_from_the_cluster_is_an_error(tmp_path: Path) -> None:
    data = tmp_path / "kubectl"
    data.write_text("#!/bin/sh\nexit 1\n")
    data.chmod(0o755)
    done = subprocess.run(
        [sys.executable, str(REVIEW), str(data), "/x", "5s"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
