"""The k8s profile's layout script for one node: k8s/layout.sh (shell helpers around openssl)
followed by this node's part, rendered here from kubeadm.py and standin.py. Pure: the same facts
and time give the same script; running it is nodes.py's business."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from casemate.lab import kubeadm as k
from casemate.lab import standin
from casemate.locations import package_file

EOF = "CASEMATE_EOF"
MARK = "/var/lib/casemate-lab/k8s-layout"  # written last; its presence makes the script a no-op
# Which of kubeadm's host CA directories exist, and the hostname: the facts the layout needs
# besides the address (docker tells that one).
FACTS_PROBE = "hostname; for d in " + " ".join(k.CA_DIRS) + '; do [ -d "$d" ] && echo "$d"; done; :'
# Runs the streamed script from a file, so that nothing in it can read the rest of the script
# from standard input; on disk, not in /tmp, which systemd empties while the node boots.
RUN = (
    "mkdir -p /var/lib/casemate-lab && f=$(mktemp /var/lib/casemate-lab/layout.XXXXXX.sh) &&"
    ' cat >"$f" && sh "$f"; rc=$?; rm -f "$f"; exit $rc'
)


def facts_of(probe_output: str, address: str) -> k.NodeFacts:
    """NodeFacts from FACTS_PROBE's output: the node name is the lower-cased hostname."""
    lines = [line.strip() for line in probe_output.splitlines() if line.strip()]
    if not lines or not address:
        raise ValueError("no hostname or no address")
    found = set(lines[1:])
    return k.NodeFacts(lines[0].lower(), address, tuple(d for d in k.CA_DIRS if d in found))


def _q(word: str) -> str:
    return shlex.quote(word)


def _here(command: str, text: str) -> str:
    """`command` with `text` as a quoted here-document (nothing in it is expanded)."""
    if not text.endswith("\n"):
        text += "\n"
    if f"\n{EOF}\n" in f"\n{text}":
        raise ValueError(f"text for {command!r} contains the here-document delimiter")
    return f"{command} <<'{EOF}'\n{text}{EOF}\n"


def _stem(c: k.Cert) -> str:
    """Absolute stems are layout files; bare names live in the script's scratch directory."""
    return c.stem if c.stem.startswith("/") else f"$WORK/{c.stem}"


def _issuer(c: k.Cert) -> str:
    if c.issuer is None:
        return '""'
    return _q(c.issuer) if c.issuer.startswith("/") else f"$WORK/{c.issuer}"


def _sign(c: k.Cert) -> str:
    words = [_q(_stem(c)) if c.stem.startswith("/") else _stem(c), _issuer(c)]
    words += [str(c.days), str(c.backdate_s), _q(c.subject)]
    return _here("sign " + " ".join(words), k.openssl_extensions(c))


def kubelet_client_pem(now: int) -> str:
    """The kubelet certificate store's file name for a pair written at `now` (node time, UTC)."""
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime(now))
    return f"{k.KUBELET_PKI}/kubelet-client-{stamp}.pem"


def certificates(n: k.NodeFacts, now: int) -> tuple[k.Cert, ...]:
    """Every certificate the script signs, issuers before what they issue."""
    serving_ca, serving = k.kubelet_serving_certs(n, now)
    return (
        *k.pki_certs(n),
        *(k.kubeconfig_cert(kc) for kc in k.kubeconfigs(n) if kc.embedded),
        k.kubelet_client_cert(n),
        serving_ca,
        serving,
    )


def node_part(n: k.NodeFacts, now: int) -> str:
    """The node-specific script that follows k8s/layout.sh."""
    out = [f"NOW={now}\n", "\n# directories\n"]
    entries = k.layout_entries(n)
    out += [f"dir {e.mode} {_q(e.path)}\n" for e in entries if e.kind == "d"]

    certs = certificates(n, now)
    out.append("\n# keys, in parallel\n")
    out += [f"bg key {c.key_type} {_stem(c)}.key\n" for c in certs]
    out += [f"bg key rsa {k.PKI}/sa.key\n", "join\n"]

    out.append("\n# certificates (RSA 2048, SHA-256; CAs 10 years, leaves 1 year)\n")
    out += [_sign(c) for c in certs]
    out.append(f"openssl rsa -in {k.PKI}/sa.key -pubout -out {k.PKI}/sa.pub 2>/dev/null\n")
    out.append(f"chmod 0600 {k.PKI}/sa.pub\n")

    out.append("\n# kubeconfigs\n")
    for kc in k.kubeconfigs(n):
        cert = f" $WORK/{k.kubeconfig_cert(kc).stem}" if kc.embedded else ""
        out.append(_here(f"kubeconfig {kc.path}{cert}", k.kubeconfig_text(kc, n)))

    pem = kubelet_client_pem(now)
    out += [
        "\n# what the kubelet wrote: its rotated client pair and its self-signed serving pair\n",
        f"cat $WORK/kubelet-client.crt $WORK/kubelet-client.key | put 0600 {pem}\n",
        f"ln -s {pem} {k.KUBELET_CLIENT_CURRENT}\n",
        f"cat $WORK/kubelet.crt $WORK/kubelet-ca.crt | put 0644 {k.KUBELET_PKI}/kubelet.crt\n",
        f"put 0600 {k.KUBELET_PKI}/kubelet.key <$WORK/kubelet.key\n",
    ]

    out.append("\n# static pod manifests, kubelet and package files\n")
    for path, mode, text in _files(n):
        put = f"put {mode} {path}"
        out.append(_here(put, text) if text else f"{put} </dev/null\n")

    out.append("\n# the lab's stand-in for the kubelet running the etcd static pod\n")
    out.append(f"dir 0755 {Path(standin.PROGRAM).parent}\n")
    out.append(_here(f"put 0755 {standin.PROGRAM}", _program()))
    for unit, text in standin_units():
        out.append(_here(f"put 0644 {standin.UNIT_DIR}/{unit}", text))

    out += [
        "\n# services: a kubeadm node runs containerd, not Docker; the kubelet unit is installed\n",
        "# but not enabled (no kubelet binary exists in a lab node)\n",
        "systemd_up\n",
        "systemctl daemon-reload\n",
        "systemctl disable --now docker.socket docker.service >/dev/null 2>&1\n",
        "systemctl mask docker.socket docker.service >/dev/null 2>&1\n",
        f"systemctl enable --now {standin.PATH_UNIT} >/dev/null 2>&1\n",
        f"systemctl enable --now {standin.SERVICE} >/dev/null 2>&1"
        f' || {{ say "etcd did not start:"; journalctl -u {standin.SERVICE} -n 5 --no-pager >&2;'
        " exit 1; }\n",
        "\ndir 0755 /var/lib/casemate-lab\n",
        f'echo "kubeadm {k.K8S_VERSION} layout for {n.name} at {n.address}, made at '
        f'$(date -u -d @$NOW +%Y-%m-%dT%H:%M:%SZ)" | put 0644 {MARK}\n',
        f'echo "kubeadm {k.K8S_VERSION} layout written"\n',
    ]
    return "".join(out)


def _files(n: k.NodeFacts) -> list[tuple[str, str, str]]:
    """(path, mode, text) of every plain file of the layout; "" is an empty file."""
    return [
        (f"{k.MANIFESTS}/.kubelet-keep", "0644", ""),
        *((f"{k.MANIFESTS}/{c}.yaml", "0600", k.manifest_text(c, n)) for c in k.COMPONENTS),
        (f"{k.KUBELET_DIR}/.kubelet-keep", "0644", ""),
        (f"{k.KUBELET_DIR}/config.yaml", "0644", k.KUBELET_CONFIG),
        (f"{k.KUBELET_DIR}/kubeadm-flags.env", "0644", k.KUBEADM_FLAGS_ENV),
        (f"{k.UNIT_DIR}/kubelet.service", "0644", k.KUBELET_SERVICE),
        (f"{k.UNIT_DIR}/kubelet.service.d/10-kubeadm.conf", "0644", k.KUBEADM_DROPIN),
        ("/etc/default/kubelet", "0644", k.ETC_DEFAULT_KUBELET),
    ]


def standin_units() -> tuple[tuple[str, str], ...]:
    return (
        (standin.SERVICE, standin.SERVICE_TEXT),
        (standin.PATH_UNIT, standin.PATH_TEXT),
        (standin.RESTARTER, standin.RESTARTER_TEXT),
    )


def _program() -> str:
    return package_file("lab", "standin.py").read_text(encoding="utf-8")


def layout_script(n: k.NodeFacts, now: int) -> str:
    """The whole script streamed into the node."""
    return package_file("lab", "k8s", "layout.sh").read_text(encoding="utf-8") + node_part(n, now)
