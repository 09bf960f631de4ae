"""kube_kubelet_preflight: every read kube_kubelet makes of its host, and the decision, in one task.

Runs on the controller and calls, in order, the readers the role's Preflight steps called one task
each (so a compliant host costs one task result instead of five, with the same reads):

1. kube_node_facts: the kubelet unit (its files, environment files), its process, the kernel
   settings protectKernelDefaults needs, the container, which environment files exist;
2. kube_manifest (read only, `if_broken: report`): config.yaml, then each environment file;
3. kube_node_facts: the 4.1 modes and owners (the unit's files as systemd loads them, the
   kubeconfigs, the client CA config.yaml names, config.yaml) and whether the kubelet runs its
   files as they are;
4. kube_kubelet_plan: the decision of every control the run selects (pure; it refuses a host
   without config.yaml).

The paths of step 3 are worked out here from steps 1 and 2 (`unit_files`, `env_paths`,
`client_ca`, `file_specs`), as the role's vars/main.yml did in Jinja before. The task returns the
plan's result, plus `process` (the kubelet's, for the restart steps) and `env_paths` (the
environment files that exist, for the write steps and the record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

# what a unit's files are when systemd does not know it
UNKNOWN_LOAD_STATES = ("", "not-found")


def unit_name(service: str) -> str:
    """The unit of a service name: `kubelet` is kubelet.service, a name with a dot is a unit."""
    return service if "." in service else f"{service}.service"


def unit_files(unit: Mapping[str, Any], service: str, unit_dirs: Sequence[str]) -> list[str]:
    """cis_k8s_4_1_1 cis_k8s_4_1_2: the files systemd loads for the unit (its unit file, not when
    masked: that is /dev/null, and every drop-in); only where systemd does not know the unit, the
    unit file and its .d/*.conf drop-ins in each of `unit_dirs`."""
    if unit.get("load_state", "") not in UNKNOWN_LOAD_STATES:
        fragment = [unit.get("fragment_path", "")] if unit.get("load_state") != "masked" else []
        return [f for f in [*fragment, *unit.get("drop_in_paths", [])] if f]
    name = unit_name(service)
    dirs = [d.rstrip("/") for d in unit_dirs]
    return [f"{d}/{name}" for d in dirs] + [f"{d}/{name}.d/*.conf" for d in dirs]


def env_paths(
    unit: Mapping[str, Any], env_files: Sequence[str], present: Sequence[str]
) -> list[str]:
    """The environment files of the kubelet's flags that exist: the unit's EnvironmentFile= lines
    (systemd reports an optional one even when it is missing), then the role's, each once."""
    out: list[str] = []
    for path in [*unit.get("environment_files", []), *env_files]:
        if path not in out and path in present:
            out.append(path)
    return out


def client_ca(config_read: Mapping[str, Any], fallback: str) -> Any:
    """cis_k8s_4_1_7 cis_k8s_4_1_8: the client CA config.yaml names (authentication.x509.
    clientCAFile), else the role's default (also where config.yaml could not be read)."""
    authn = (config_read.get("config") or {}).get("authentication")
    x509 = authn.get("x509") if isinstance(authn, dict) else None
    found = x509.get("clientCAFile") if isinstance(x509, dict) else None
    return found or fallback


def file_specs(
    files: Sequence[str], args: Mapping[str, Any], ca: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(modes, owners) of section 4.1 as kube_node_facts takes them: the mode limit of each file
    (bits beyond it are removed, none is added) and the files that must be root:root."""
    modes = [
        {"id": "cis_k8s_4_1_1", "globs": list(files), "max": "0600"},
        {"id": "cis_k8s_4_1_3", "glob": args["proxy_kubeconfig"], "max": "0600"},
        {"id": "cis_k8s_4_1_5", "glob": args["kubeconfig"], "max": "0600"},
        {"id": "cis_k8s_4_1_7", "glob": ca, "max": "0644"},
        {"id": "cis_k8s_4_1_9", "glob": args["config_path"], "max": "0600"},
    ]
    owners = [
        {"id": "cis_k8s_4_1_2", "globs": list(files)},
        {"id": "cis_k8s_4_1_4", "glob": args["proxy_kubeconfig"]},
        {"id": "cis_k8s_4_1_6", "glob": args["kubeconfig"]},
        {"id": "cis_k8s_4_1_8", "glob": ca},
        {"id": "cis_k8s_4_1_10", "glob": args["config_path"]},
    ]
    return modes, owners


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(
        (
            "service",
            "config_path",
            "unit_dirs",
            "env_files",
            "env_variables",
            "kubeconfig",
            "proxy_kubeconfig",
            "client_ca_file",
            "backup_dir",
            "sysctls",
            "settings",
            "run_tags",
            "skip_tags",
        )
    )

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result: dict[str, Any] = super().run(tmp, task_vars)
        args = dict(self._task.args)
        for key in ("service", "config_path", "backup_dir", "settings"):
            if not args.get(key):
                raise AnsibleActionFail(f"kube_kubelet_preflight needs {key}")
        service = str(args["service"])
        node = self._module(
            "kube_node_facts",
            {
                "units": [service],
                "services": {"kubelet": service},
                "sysctls": list(args.get("sysctls") or []),
                "present": list(args.get("env_files") or []),
            },
            task_vars,
        )
        unit = node["units"][service]
        config = self._read(
            args["config_path"], "config", {"kind": "KubeletConfiguration"}, args, task_vars
        )
        paths = env_paths(unit, args.get("env_files") or [], node.get("present") or [])
        env = [
            dict(
                self._read(
                    path,
                    "env",
                    {"variables": list(args.get("env_variables") or [])},
                    args,
                    task_vars,
                ),
                item=path,
            )
            for path in paths
        ]
        loaded_paths = [args["config_path"], *paths]
        modes, owners = file_specs(
            unit_files(unit, service, args.get("unit_dirs") or []),
            args,
            client_ca(config, args.get("client_ca_file") or ""),
        )
        files = self._module(
            "kube_node_facts",
            {"modes": modes, "owners": owners, "loaded": {service: loaded_paths}},
            task_vars,
        )
        plan = self._execute_module(
            module_name="kube_kubelet_plan",
            module_args={
                "run_tags": list(args.get("run_tags") or ["all"]),
                "skip_tags": list(args.get("skip_tags") or []),
                "config": config,
                "env": env,
                "node": node,
                "files": files,
                "settings": args["settings"],
            },
            task_vars=task_vars,
        )
        if plan.get("failed"):
            result.update(failed=True, msg=plan.get("msg", "kube_kubelet_plan failed"))
            return result
        for key in ("invocation", "changed", "_ansible_parsed"):
            plan.pop(key, None)
        result.update(plan)
        result.update(changed=False, process=node["processes"]["kubelet"], env_paths=paths)
        return result

    def _module(self, name: str, module_args: dict[str, Any], task_vars: dict[str, Any]) -> Any:
        found = self._execute_module(module_name=name, module_args=module_args, task_vars=task_vars)
        if found.get("failed"):
            raise AnsibleActionFail(f"{name}: {found.get('msg')}")
        return _strip(found)

    def _read(
        self,
        path: str,
        fmt: str,
        extra: dict[str, Any],
        args: Mapping[str, Any],
        task_vars: dict[str, Any],
    ) -> dict[str, Any]:
        """kube_manifest's read of one file (it changes nothing without settings): the parsed
        config or flags, the file's mode, or why it is broken."""
        task = self._task.copy()
        task.args.clear()
        task.args.update(
            {
                "path": path,
                "format": fmt,
                "backup_dir": args["backup_dir"],
                "if_broken": "report",
                **extra,
            }
        )
        action = self._shared_loader_obj.action_loader.get(
            "kube_manifest",
            task=task,
            connection=self._connection,
            play_context=self._play_context,
            loader=self._loader,
            templar=self._templar,
            shared_loader_obj=self._shared_loader_obj,
            collection_list=self._task.collections,
        )
        if action is None:  # kube_node, a dependency of the role, ships it
            raise AnsibleActionFail("kube_manifest (kube_node's action) is not on the path")
        read = action.run(task_vars=task_vars)
        if read.get("failed"):
            raise AnsibleActionFail(f"kube_manifest on {path}: {read.get('msg')}")
        return _strip(read)


def _strip(found: Mapping[str, Any]) -> dict[str, Any]:
    """A module's result without Ansible's own keys (they are not the reads)."""
    return {
        k: v
        for k, v in found.items()
        if k not in ("invocation", "changed", "failed", "warnings", "deprecations")
        and not k.startswith("_ansible")
    }
