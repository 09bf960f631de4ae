"""etcd_decide: read etcd's manifest and decide every selected etcd control, on the controller,
so that a compliant node skips every change step as one include.

The manifest is read whole on the node (kube_node_facts), parsed here with the manifest editor's
own code (kube_node's kube_manifest action: the node needs no YAML library), then the role's plan
module decides on the node (library/etcd_plan.py, the same decisions as before, from the same
inputs: it reads the account, the data directory, the CAs and the running etcd itself). Whether
the manifest edit would change the file is judged with the editor's `plan_edit`. `apply` is true
where a data directory step or the manifest would change (or the edit cannot be made); the steps
then run as before, the edit reading the manifest again (a file changed in between is judged
afresh).
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("run_tags", "skip_tags", "settings"))

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
        raise AnsibleActionFail("etcd_decide needs kube_node's kube_manifest action")

    def _decide(
        self, km: ModuleType, args: dict[str, Any], task_vars: dict[str, Any]
    ) -> dict[str, Any]:
        settings = args["settings"]
        path = settings["manifest_path"]
        read = self._execute_module(
            module_name="kube_node_facts", module_args={"read": [path]}, task_vars=task_vars
        )
        if read.get("failed"):
            raise AnsibleActionFail(f"kube_node_facts: {read.get('msg')}")
        found = km.read_result(path, read["read"][path])
        plan = self._execute_module(
            module_name="etcd_plan",
            module_args={
                "run_tags": args.get("run_tags") or ["all"],
                "skip_tags": args.get("skip_tags") or [],
                "found": found,
                "settings": settings,
            },
            task_vars=task_vars,
        )
        if plan.get("failed"):  # a refusal: nothing changed
            return {"failed": True, "msg": plan.get("msg")}
        differs = [f"data directory {plan['data_dir']}"] if plan["files"]["apply"] else []
        if plan["usable"] and km.pod_would_change(read["read"][path]["text"], plan["edit"]):
            differs.append(f"manifest {path}")
        decided = {k: v for k, v in plan.items() if k not in ("changed", "invocation")}
        return {
            **decided,
            "changed": False,
            "found": found,
            "differs": differs,
            "apply": bool(differs),
        }
