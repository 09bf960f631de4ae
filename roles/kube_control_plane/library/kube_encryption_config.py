#!/usr/bin/python
"""Keep an EncryptionConfiguration whose first provider for the chosen resources is a strong one,
with a key generated here, on the node. The key never leaves this module: it is not returned,
logged or shown in a diff."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kube_encryption_config
short_description: An EncryptionConfiguration for the API server with a node-generated key
description:
  - When the file is missing, writes one whose first provider for each resource is aescbc or
    secretbox with a fresh 32-byte key from os.urandom, then identity (so data written before
    stays readable). The file is root-only (0600, directory 0700).
  - When the file exists and every resource already starts with aescbc, secretbox or kms, nothing
    changes, so the key of an earlier run is kept (a new key would make existing Secrets
    unreadable). Otherwise a new provider with a fresh key is put first and every existing
    provider and key is kept behind it; the old file is backed up first.
  - Never returns key material; the caller should still use no_log.
  - Standard library only for files it wrote itself; a foreign file that needs changing is read
    as JSON or, when python3-yaml is installed, as YAML.
options:
  path: {description: the EncryptionConfiguration file, type: path, required: true}
  provider: {description: provider to put first, type: str, choices: [aescbc, secretbox], default: aescbc}
  resources: {description: resources to encrypt, type: list, elements: str, default: [secrets]}
  key_name: {description: name of the generated key, type: str, default: casemate-1}
  backup_dir: {description: where an existing file is copied before it changes, type: path, required: true}
  decide_only:
    description: only say what a run would do (changed, fingerprint), as in check mode, whatever the run's mode; the role's plan asks so before it skips its write steps
    type: bool
    default: false
"""

RETURN = r"""
first_providers: {description: resource -> first provider after the run, type: dict}
fingerprint: {description: "sha256 over the file's structure with every secret blanked: changes when providers or key names change, never reveals a key", type: str}
backup_file: {description: copy of the previous file (only when an existing file changed), type: str}
"""

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

STRONG = ("aescbc", "secretbox", "kms")
MARKER = "# written by casemate (cis_k8s_1_2_27 cis_k8s_1_2_28)"


def new_key():
    return base64.b64encode(os.urandom(32)).decode("ascii")


def render(config):
    """YAML text for a configuration of the shape this module writes (plain scalars only)."""
    lines = [
        MARKER,
        "apiVersion: %s" % config["apiVersion"],
        "kind: %s" % config["kind"],
        "resources:",
    ]
    for entry in config["resources"]:
        lines.append("  - resources:")
        lines.extend("      - %s" % r for r in entry["resources"])
        lines.append("    providers:")
        for provider in entry["providers"]:
            ((name, body),) = provider.items()
            if not body or not body.get("keys"):
                lines.append("      - %s: {}" % name)
                continue
            lines.append("      - %s:" % name)
            lines.append("          keys:")
            for key in body["keys"]:
                lines.append("            - name: %s" % key["name"])
                lines.append("              secret: %s" % key["secret"])
    return "\n".join(lines) + "\n"


def read_own(text):
    """Parse a file this module wrote (its fixed shape) without a YAML library."""
    config = {"apiVersion": "", "kind": "", "resources": []}
    entry = provider = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"^(apiVersion|kind): (\S+)$", line)
        if m:
            config[m.group(1)] = m.group(2)
        elif line == "  - resources:":
            entry = {"resources": [], "providers": []}
            config["resources"].append(entry)
        elif (
            re.match(r"^      - [A-Za-z0-9./-]+$", line)
            and entry is not None
            and not entry["providers"]
        ):
            entry["resources"].append(line.split("- ", 1)[1])
        elif line in ("resources:", "    providers:", "          keys:"):
            continue
        elif re.match(r"^      - [a-z0-9]+:( \{\})?$", line) and entry is not None:
            name = line.split("- ", 1)[1].split(":")[0]
            provider = {"keys": []} if not line.endswith("{}") else {}
            entry["providers"].append({name: provider})
        elif line.startswith("            - name: ") and provider is not None:
            provider["keys"].append({"name": line.split(": ", 1)[1], "secret": ""})
        elif line.startswith("              secret: ") and provider and provider["keys"]:
            provider["keys"][-1]["secret"] = line.split(": ", 1)[1]
        else:
            raise ValueError("unexpected line %r" % line.strip()[:40])
    return config


def parse(text):
    if text.startswith(MARKER):
        return read_own(text), "own"
    try:
        return json.loads(text), "json"
    except ValueError:
        pass
    try:
        import yaml  # noqa: PLC0415 - optional on the node
    except ImportError:
        raise ValueError(
            "it is not casemate's and not JSON, and python3-yaml is not installed to read it"
        ) from None
    try:
        return yaml.safe_load(text), "yaml"
    except yaml.YAMLError as exc:
        raise ValueError("it is not valid YAML (%s)" % exc) from None


def load(path):
    with open(path) as handle:
        config, style = parse(handle.read())
    if not isinstance(config, dict) or config.get("kind") != "EncryptionConfiguration":
        raise ValueError("it is not an EncryptionConfiguration")
    return config, style


def first_providers(config, resources):
    found = {}
    for wanted in resources:
        providers = (entry_of(config, wanted) or {}).get("providers") or [{}]
        found[wanted] = next(iter(providers[0] or {}), "")
    return found


def entry_of(config, resource):
    """The first resources entry covering `resource` (the one the API server uses), or None."""
    return next(
        (e for e in config.get("resources") or [] if resource in (e.get("resources") or [])), None
    )


def starts_strong(entry):
    first = ((entry or {}).get("providers") or [{}])[0] or {}
    name = next(iter(first), "")
    return name == "kms" or (name in STRONG and bool((first[name] or {}).get("keys")))


def strong(config, resources):
    return all(starts_strong(entry_of(config, r)) for r in resources)


def fingerprint(config):
    def blank(value):
        if isinstance(value, dict):
            return {k: "" if k == "secret" else blank(v) for k, v in value.items()}
        if isinstance(value, list):
            return [blank(v) for v in value]
        return value

    return hashlib.sha256(json.dumps(blank(config), sort_keys=True).encode()).hexdigest()


def strengthen(config, resources, provider, key_name):
    """Put a fresh strong provider first for every wanted resource; keep every existing one."""
    taken = set()
    for entry in config.get("resources") or []:
        for p in entry.get("providers") or []:
            for body in p.values():
                taken.update(k.get("name") for k in (body or {}).get("keys") or [])
    name, n = key_name, 1
    while name in taken:
        n += 1
        name = re.sub(r"-\d+$", "", key_name) + "-%d" % n
    fresh = {provider: {"keys": [{"name": name, "secret": new_key()}]}}
    entries = config.setdefault("resources", [])
    for wanted in resources:
        entry = entry_of(config, wanted)
        if entry is None:
            entries.append({"resources": [wanted], "providers": [fresh, {"identity": {}}]})
        elif not starts_strong(entry):
            entry["providers"] = [fresh] + (entry.get("providers") or [])
    return config


def write(path, text):
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=".casemate-")
    try:
        os.fchmod(handle, 0o600)
        os.write(handle, text.encode())
        os.fsync(handle)
    finally:
        os.close(handle)
    os.rename(tmp, path)


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "provider": {"type": "str", "choices": ["aescbc", "secretbox"], "default": "aescbc"},
            "resources": {"type": "list", "elements": "str", "default": ["secrets"]},
            "key_name": {"type": "str", "default": "casemate-1", "no_log": False},
            "backup_dir": {"type": "path", "required": True},
            "decide_only": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    p = module.params
    path, resources = p["path"], p["resources"]
    if os.path.exists(path):
        try:
            config, style = load(path)
        except (OSError, ValueError) as exc:
            module.fail_json(msg="cannot use %s: %s; refusing to change it" % (path, exc))
        if strong(config, resources):
            module.exit_json(changed=False, first_providers=first_providers(config, resources),
                             fingerprint=fingerprint(config))  # fmt: skip
        config = strengthen(config, resources, p["provider"], p["key_name"])
    else:
        style = "own"
        config = {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [],
        }
        config = strengthen(config, resources, p["provider"], p["key_name"])
    result = {
        "changed": True,
        "first_providers": first_providers(config, resources),
        "fingerprint": fingerprint(config),
    }
    if module.check_mode or p["decide_only"]:
        module.exit_json(**result)
    if os.path.exists(path):
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        if not os.path.isdir(p["backup_dir"]):
            os.makedirs(p["backup_dir"], 0o700)
        result["backup_file"] = os.path.join(
            p["backup_dir"], "%s.%s" % (os.path.basename(path), stamp)
        )
        shutil.copy2(path, result["backup_file"])
        os.chmod(result["backup_file"], 0o600)
    if style == "yaml":
        import yaml  # noqa: PLC0415 - only where the existing file was YAML

        text = yaml.safe_dump(config, default_flow_style=False, sort_keys=False)
    elif style == "json":
        text = json.dumps(config, indent=2) + "\n"
    else:
        text = render(config)
    write(path, text)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
