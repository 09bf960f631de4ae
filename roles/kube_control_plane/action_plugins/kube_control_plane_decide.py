"""kube_control_plane_decide: read the control plane once and decide every selected control, on the
controller, so that a compliant node skips every change step as one include.

One read on the node (kube_node_facts: the manifests and casemate's own files whole, the 1.1
modes and owners, the kubelet serving certificate, casemate's directories), the manifests parsed
here with the manifest editor's own code (kube_node's kube_manifest action: the node needs no YAML
library), then the role's plan module on the node (library/kube_control_plane_plan.py, the same
decisions as before, from the same inputs). What the change steps would do is then judged with
the code they run: the editor's `plan_edit` and `own_document` for the manifests and casemate's
files, kube_encryption_config with decide_only for the encryption configuration, so the API
server's checksum annotations are the ones the writes would give. `apply` is true where any step
would change something or cannot be judged here; the steps then run as before, each reading its
file again (a file changed in between is judged afresh).
"""

from __future__ import annotations

import hashlib
import posixpath
import sys
from types import ModuleType
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

COMPONENTS = ("apiserver", "controller_manager", "scheduler")
# casemate's files the API server reads, in the order the role writes them, and the plan's
# `writes` key that decides each
DOCUMENTS = ("authentication", "event_rate_limit", "admission", "audit_policy")


def read_result(km: ModuleType, path: str, found: dict[str, Any]) -> dict[str, Any]:
    """What kube_manifest's read returned for a manifest; a missing manifest is a skipped read,
    as the read was skipped where the manifest did not exist."""
    if not found.get("exists"):
        return {"skipped": True, "changed": False}
    return km.read_result(path, found)  # type: ignore[no-any-return]


def document_checksum(
    km: ModuleType, found: dict[str, Any], doc: dict[str, Any]
) -> tuple[bool, str]:
    """(would change, checksum the write step returns) of one of casemate's own files."""
    text = found.get("text") if found.get("exists") else None
    if found.get("exists") and text is None:
        return True, ""  # the write step reads it itself and fails or rewrites it
    try:
        new_text, changed = km.own_document(text, doc["document"], doc.get("header") or "")
    except km.ManifestError:
        return True, ""
    return bool(changed), hashlib.sha256(new_text.encode()).hexdigest()


def annotations(
    checksums: dict[str, str], event_rate_limit: bool, fingerprint: str
) -> dict[str, str]:
    """vars/main.yml's kube_control_plane_annotations, from the checksums the writes return."""
    out: dict[str, str] = {}
    if "authentication" in checksums:
        out["casemate/authentication-config"] = checksums["authentication"][:16]
    if "admission" in checksums:
        parts = [checksums["admission"]] + (
            [checksums["event_rate_limit"]] if event_rate_limit else []
        )
        out["casemate/admission-config"] = hashlib.sha1("".join(parts).encode()).hexdigest()[:16]
    if fingerprint:
        out["casemate/encryption-config"] = fingerprint[:16]
    if "audit_policy" in checksums:
        out["casemate/audit-policy"] = checksums["audit_policy"][:16]
    return out


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        (
            "run_tags",
            "skip_tags",
            "components",
            "settings",
            "modes",
            "owners",
            "exclude",
            "verify",
            "documents",
            "encryption",
        )
    )

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result: dict[str, Any] = super().run(tmp, task_vars)
        km = self._editor()
        args = km._plain(dict(self._task.args))
        try:
            result.update(self._decide(km, args, task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _editor(self) -> ModuleType:
        """kube_node's manifest editor (action_plugins/kube_manifest.py), as Ansible loaded it."""
        cls = self._shared_loader_obj.action_loader.get(
            "kube_manifest", class_only=True, collection_list=self._task.collections
        )
        # a strategy may wrap the class (mitogen does): the editor's module is the one that
        # defines plan_edit
        for klass in getattr(cls, "__mro__", ()):
            module = sys.modules.get(klass.__module__)
            if module is not None and hasattr(module, "plan_edit"):
                return module
        raise AnsibleActionFail("kube_control_plane_decide needs kube_node's kube_manifest action")

    def _module(self, name: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> Any:
        return self._execute_module(module_name=name, module_args=module_args, task_vars=task_vars)

    def _decide(
        self, km: ModuleType, args: dict[str, Any], task_vars: dict[str, Any]
    ) -> dict[str, Any]:
        comps, settings, docs = args["components"], args["settings"], args["documents"]
        # every directory the plan may ask the Prep step to make root-only
        own_dirs = [
            settings["config_dir"],
            posixpath.dirname(settings["audit_log_path"]),
            posixpath.dirname(settings["encryption_config_file"]),
        ]
        read = self._module(
            "kube_node_facts",
            {
                "modes": args.get("modes") or [],
                "owners": args.get("owners") or [],
                "exclude": args.get("exclude") or [],
                "verify": args.get("verify") or [],
                "read": [comps[c]["path"] for c in COMPONENTS]
                + [docs[d]["path"] for d in DOCUMENTS],
                "directories": dict.fromkeys(own_dirs, "0700"),
            },
            task_vars,
        )
        if read.get("failed"):
            raise AnsibleActionFail(f"kube_node_facts: {read.get('msg')}")
        files, directories = read["read"], read["directories"]
        if not any(files[comps[c]["path"]]["exists"] for c in COMPONENTS):
            raise AnsibleActionFail(
                f"none of {', '.join(comps[c]['path'] for c in COMPONENTS)} exists: this role "
                "hardens a kubeadm control plane run as static pods (set the *_manifest variables "
                "if the manifests live elsewhere)."
            )
        reads = {c: read_result(km, comps[c]["path"], files[comps[c]["path"]]) for c in COMPONENTS}
        # a broken manifest is left exactly as it is, its mode and owner too
        broken = {r["path"] for r in reads.values() if "broken" in r}
        node = {
            "verified": read.get("verified") or [],
            **{
                key: [i for i in read.get(key) or [] if i.get("path") not in broken]
                for key in ("loose_modes", "wrong_owners")
            },
        }
        found = {
            c: {
                "exists": files[comps[c]["path"]]["exists"],
                "path": comps[c]["path"],
                "process": comps[c]["process"],
                "health_path": comps[c]["health_path"],
                "read": reads[c],
            }
            for c in COMPONENTS
        }
        plan = self._module(
            "kube_control_plane_plan",
            {
                "run_tags": args.get("run_tags") or ["all"],
                "skip_tags": args.get("skip_tags") or [],
                "found": found,
                "node": node,
                "settings": settings,
            },
            task_vars,
        )
        if plan.get("failed"):  # a refusal: nothing changed
            return {"failed": True, "msg": plan.get("msg")}
        differs = self._differs(
            km=km, args=args, task_vars=task_vars, plan=plan, files=files, directories=directories
        )
        decided = {k: v for k, v in plan.items() if k not in ("changed", "invocation")}
        return {
            **decided,
            "changed": False,
            "reads": reads,
            "node": node,
            "differs": differs,
            "apply": bool(differs),
        }

    def _differs(
        self,
        *,
        km: ModuleType,
        args: dict[str, Any],
        task_vars: dict[str, Any],
        plan: dict[str, Any],
        files: dict[str, Any],
        directories: dict[str, bool],
    ) -> list[str]:
        """What the change steps would change (or cannot be judged here), one line each."""
        comps, settings, docs = args["components"], args["settings"], args["documents"]
        out = [f"{i['id']} {i['path']}" for i in plan["files"]]
        edits = {c: dict(plan["edits"][c]) for c in COMPONENTS}
        if plan["usable"]["apiserver"]:
            out += [f"directory {d}" for d in plan["dirs"] if not directories.get(d)]
            checksums = {}
            writes = plan["writes"]
            for name in DOCUMENTS:  # the event rate limits are written inside the admission block
                if not writes[name] or (name == "event_rate_limit" and not writes["admission"]):
                    continue
                changed, checksums[name] = document_checksum(
                    km, files[docs[name]["path"]], docs[name]
                )
                if changed:
                    out.append(f"file {docs[name]['path']}")
            fingerprint = ""
            if plan["writes"]["encryption"]:
                encryption = self._module(
                    "kube_encryption_config",
                    {**args["encryption"], "path": plan["encryption_path"], "decide_only": True},
                    task_vars,
                )
                fingerprint = str(encryption.get("fingerprint") or "")
                if encryption.get("failed") or encryption.get("changed") or not fingerprint:
                    out.append(f"file {plan['encryption_path']}")
            edits["apiserver"]["annotations"] = annotations(
                checksums, bool(settings["event_rate_limit"]), fingerprint
            )
        for c in COMPONENTS:
            if plan["usable"][c] and km.pod_would_change(files[comps[c]["path"]]["text"], edits[c]):
                out.append(f"manifest {comps[c]['path']}")
        return out
