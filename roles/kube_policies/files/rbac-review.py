#!/usr/bin/python3
"""casemate's RBAC review for the manual CIS Kubernetes 1.12 controls 5.1.x.

Reads the cluster with kubectl (read-only) and prints one finding per line,
"<control id>: <what to review>", sorted, so the output changes only when the cluster does.
Usage: rbac-review.py KUBECTL KUBECONFIG TIMEOUT. Exits 2 when the cluster does not answer.
"""

import json
import subprocess
import sys

# roles left out of the wildcard and sensitive-verb findings: Kubernetes' own
BUILTIN = ("cluster-admin", "admin", "edit")
# (control, API group, resource, verbs) whose holders 5.1.8-5.1.13 ask to keep few ("*": any)
SENSITIVE = [
    ("cis_k8s_5_1_8", "*", "*", ("bind", "impersonate", "escalate")),
    ("cis_k8s_5_1_9", "", "persistentvolumes", ("create",)),
    ("cis_k8s_5_1_10", "", "nodes/proxy", ("get", "create", "*")),
    (
        "cis_k8s_5_1_11",
        "certificates.k8s.io",
        "certificatesigningrequests/approval",
        ("update", "patch", "*"),
    ),
    (
        "cis_k8s_5_1_12",
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        ("create", "update", "patch", "*"),
    ),
    (
        "cis_k8s_5_1_12",
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        ("create", "update", "patch", "*"),
    ),
    ("cis_k8s_5_1_13", "", "serviceaccounts/token", ("create", "*")),
]


def kubectl(base, *args):
    done = subprocess.run([*base, *args], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


def items(base, kind):
    rc, out = kubectl(base, "get", kind, "--all-namespaces", "-o", "json")
    if rc != 0:
        sys.stderr.write(f"kubectl get {kind} failed\n")
        sys.exit(2)
    return json.loads(out).get("items", [])


def name_of(obj):
    meta = obj.get("metadata", {})
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta.get("name", "?")


def binding_findings(base):
    found = set()
    for b in items(base, "clusterrolebindings") + items(base, "rolebindings"):
        kind, name = b.get("kind"), name_of(b)
        admin = b.get("roleRef", {}).get("name") == "cluster-admin"
        if kind == "ClusterRoleBinding" and admin and name != "cluster-admin":
            found.add(f"cis_k8s_5_1_1: ClusterRoleBinding {name} grants cluster-admin")
        for s in b.get("subjects") or []:
            if (
                s.get("kind") == "Group"
                and s.get("name") == "system:masters"
                and name != "cluster-admin"
            ):
                found.add(f"cis_k8s_5_1_7: {kind} {name} binds group system:masters")
    return found


def access_findings(base):
    def can(verb, resource):
        _, out = kubectl(
            base,
            "auth",
            "can-i",
            verb,
            resource,
            "--all-namespaces",
            "--as=casemate-review",
            "--as-group=system:authenticated",
        )
        return out.strip() == "yes"

    found = {
        f"cis_k8s_5_1_2: every authenticated user may {v} Secrets"
        for v in ("get", "list", "watch")
        if can(v, "secrets")
    }
    if can("create", "pods"):
        found.add("cis_k8s_5_1_4: every authenticated user may create Pods")
    return found


def rule_findings(what, rule):
    found = set()
    verbs, groups, resources = (
        rule.get("verbs") or [],
        rule.get("apiGroups") or [],
        rule.get("resources") or [],
    )
    if "*" in verbs + groups + resources:
        found.add(f"cis_k8s_5_1_3: {what} has a wildcard rule")
    for cid, group, resource, risky in SENSITIVE:
        granted = sorted(set(risky) - {"*"}) if "*" in verbs else sorted(set(risky) & set(verbs))
        if (
            granted
            and (group == "*" or group in groups or "*" in groups)
            and (resource in resources or "*" in resources or resource == "*")
        ):
            found.add(f"{cid}: {what} may {'/'.join(granted)} {resource}")
    return found


def role_findings(base):
    found = set()
    for role in items(base, "clusterroles") + items(base, "roles"):
        name = name_of(role)
        if name.startswith("system:") or name in BUILTIN:
            continue
        for rule in role.get("rules") or []:
            found |= rule_findings(f"{role.get('kind')} {name}", rule)
    return found


def other_findings(base):
    found = set()
    for sa in items(base, "serviceaccounts"):
        if (
            sa["metadata"]["name"] == "default"
            and sa.get("automountServiceAccountToken") is not False
        ):
            found.add(
                f"cis_k8s_5_1_5: ServiceAccount {name_of(sa)} mounts its token "
                "(set automountServiceAccountToken: false)"
            )
    for csr in items(base, "certificatesigningrequests"):
        spec = csr.get("spec", {})
        if spec.get("signerName") == "kubernetes.io/kubelet-serving" and not csr.get(
            "status", {}
        ).get("conditions"):
            found.add(
                f"cis_k8s_1_2_5: kubelet serving CSR {name_of(csr)} from "
                f"{spec.get('username', '?')} waits for approval (check the names it asks for, "
                "then kubectl certificate approve)"
            )
    return found


def main():
    kubectl_bin, kubeconfig, timeout = sys.argv[1:4]
    base = [kubectl_bin, "--kubeconfig", kubeconfig, "--request-timeout", timeout]
    found = (
        binding_findings(base) | access_findings(base) | role_findings(base) | other_findings(base)
    )
    for line in sorted(found):
        print(line)


if __name__ == "__main__":
    main()
