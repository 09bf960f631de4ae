"""The Kubernetes check kinds judged on recorded observations: static pod flags (manifest and live
process), kubelet settings (flag over config over default), TLS client-certificate auth, all_of,
and files named by a manifest flag or found as a unit's drop-ins."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from casemate.catalog.loader import load_catalog
from casemate.checks import builtin_kinds, doc_field
from casemate.checks.base import Observations, Status, Verdict
from casemate.verify import judge

from .obs import obs, stat

KINDS = builtin_kinds()
APISERVER = "/etc/kubernetes/manifests/kube-apiserver.yaml"
ETCD = "/etc/kubernetes/manifests/etcd.yaml"


def run(kind: str, params: dict[str, Any], o: Observations) -> Verdict:
    k = KINDS[kind]
    return k.judge(k.params.model_validate(params), o)


def manifest(*flags: str, binary: str = "kube-apiserver") -> dict[str, Any]:
    doc = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": binary, "namespace": "kube-system"},
        "spec": {"containers": [{"name": binary, "command": [binary, *flags]}]},
    }
    return {"exists": True, "content": yaml.safe_dump(doc)}


def flag_params(**extra: Any) -> dict[str, Any]:
    return {"manifest": APISERVER, "flags": ["--profiling"], "type": "bool", "unset": True,
            "op": "eq", "value": False} | extra  # fmt: skip


# --- manifest_flag -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "status", "seen"),
    [
        (("--profiling=false",), Status.PASS, "false (from manifest)"),
        (("--profiling=true",), Status.FAIL, "true (from manifest)"),
        ((), Status.FAIL, "true (from default)"),
    ],
)
def test_manifest_flag_from_the_manifest(flags: tuple[str, ...], status: Status, seen: str) -> None:
    v = run("manifest_flag", flag_params(), obs({f"read:{APISERVER}": manifest(*flags)}))
    assert v.status is status
    assert v.observed == seen


def test_manifest_flag_missing_unparsable_or_not_a_pod() -> None:
    gone = obs({f"read:{APISERVER}": {"exists": False}})
    assert run("manifest_flag", flag_params(), gone).status is Status.FAIL
    assert (
        run("manifest_flag", flag_params(missing="not_applicable"), gone).status
        is Status.NOT_APPLICABLE
    )
    broken = obs({f"read:{APISERVER}": {"exists": True, "content": "kind: Pod\nspec: [\n"}})
    assert run("manifest_flag", flag_params(), broken).status is Status.ERROR
    other = obs({f"read:{APISERVER}": {"exists": True, "content": "kind: Deployment\n"}})
    v = run("manifest_flag", flag_params(), other)
    assert v.status is Status.ERROR
    assert "not a Pod manifest" in v.observed
    unreadable = obs({f"read:{APISERVER}": {"error": "read: permission denied"}})
    assert run("manifest_flag", flag_params(), unreadable).status is Status.ERROR


def test_manifest_flag_list_values() -> None:
    p = {"manifest": APISERVER, "flags": ["--enable-admission-plugins"], "type": "list",
         "op": "contains", "value": "NodeRestriction"}  # fmt: skip
    yes = obs(
        {
            f"read:{APISERVER}": manifest(
                "--enable-admission-plugins=AlwaysPullImages,NodeRestriction"
            )
        }
    )
    assert run("manifest_flag", p, yes).status is Status.PASS
    no = obs({f"read:{APISERVER}": manifest("--enable-admission-plugins=AlwaysPullImages")})
    assert run("manifest_flag", p, no).status is Status.FAIL
    absent = obs({f"read:{APISERVER}": manifest()})
    assert (
        run("manifest_flag", p | {"op": "not_contains", "value": "AlwaysAdmit"}, absent).status
        is Status.PASS
    )


def test_manifest_flag_with_and_without_the_live_process() -> None:
    p = flag_params(process="kube-apiserver")
    good = manifest("--profiling=false")
    stopped = obs({f"read:{APISERVER}": good, "proc_any:kube-apiserver": {"running": False}})
    v = run("manifest_flag", p, stopped)
    assert v.status is Status.PASS
    assert v.observed == "false (from manifest; no kube-apiserver process runs here)"
    live_old = {"running": True, "argv": ["kube-apiserver", "--profiling=true"]}
    v = run(
        "manifest_flag", p, obs({f"read:{APISERVER}": good, "proc_any:kube-apiserver": live_old})
    )
    assert v.status is Status.FAIL
    assert "not in effect" in v.observed
    live_new = {"running": True, "argv": ["kube-apiserver", "--profiling=false"]}
    v = run("manifest_flag", p, obs({f"read:{APISERVER}": manifest("--profiling=true"),
                                     "proc_any:kube-apiserver": live_new}))  # fmt: skip
    assert v.status is Status.FAIL
    assert "manifest says" in v.observed
    v = run(
        "manifest_flag", p, obs({f"read:{APISERVER}": good, "proc_any:kube-apiserver": live_new})
    )
    assert v.status is Status.PASS
    assert v.evidence == (f"read:{APISERVER}", "proc_any:kube-apiserver")


def test_a_hosts_manifests_and_kubelet_config_are_parsed_once_whatever_the_checks_reading_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A k8s node's level 2 verify judges 54 static pod flags from 4 manifests: parsing each
    manifest per check was 90 % of judging the host. Each verdict is the one a host judged for
    that check alone gives, a document that does not parse included."""
    parsed: list[str] = []
    real_parse = doc_field.parse
    monkeypatch.setattr(
        doc_field, "parse", lambda text, fmt: parsed.append(text) or real_parse(text, fmt)
    )
    bad = {"exists": True, "content": "spec: [unclosed"}
    data = {f"read:{APISERVER}": manifest("--profiling=false", "--anonymous-auth=false"),
            f"read:{ETCD}": bad} | kubelet({"readOnlyPort": 0}).data  # fmt: skip
    checks = [
        ("manifest_flag", flag_params()),
        ("manifest_flag", flag_params(flags=["--anonymous-auth"], unset=True)),
        ("manifest_flag", flag_params(manifest=ETCD)),
        ("manifest_flag", flag_params(manifest=ETCD, flags=["--anonymous-auth"])),
        ("kubelet_config_key", RO_PORT),
        ("kubelet_config_key", RO_PORT | {"op": "ne"}),
        ("doc_field", {"path": APISERVER, "pointer": "/kind", "op": "eq", "value": "Pod"}),
    ]
    host = obs(data)
    together = [run(kind, params, host) for kind, params in checks]
    assert len(parsed) == 3  # the API server's manifest, etcd's, the kubelet's config
    alone = [run(kind, params, obs(data)) for kind, params in checks]
    assert together == alone
    assert [v.status for v in together] == [Status.PASS, Status.PASS, Status.ERROR, Status.ERROR,
                                            Status.PASS, Status.FAIL, Status.PASS]  # fmt: skip
    assert together[2].observed == together[3].observed
    assert together[2].observed.startswith(f"{ETCD} does not parse: ")


def test_manifest_flag_needs_a_value_and_a_flag() -> None:
    with pytest.raises(ValidationError):
        KINDS["manifest_flag"].params.model_validate(
            {"manifest": APISERVER, "flags": [], "op": "present"}
        )
    with pytest.raises(ValidationError):
        KINDS["manifest_flag"].params.model_validate(
            {"manifest": APISERVER, "flags": ["--x"], "op": "eq"}
        )


# --- kubelet_config_key ------------------------------------------------------------------------

SVC = 'svc_config:{"config": "/var/lib/kubelet/config.yaml", "config_flag": "--config", "process": "kubelet", "unit": "kubelet.service"}'
KUBELET_UNIT_ARGV = ["/usr/bin/kubelet", "--config=/var/lib/kubelet/config.yaml",
                     "--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock"]  # fmt: skip


def kubelet(
    config: dict[str, Any] | None, argv: list[str] | None = None, source: str = "unit"
) -> Observations:
    cfg = (
        {"exists": True, "content": yaml.safe_dump(config)}
        if config is not None
        else {"exists": False}
    )
    return obs({SVC: {"argv": KUBELET_UNIT_ARGV if argv is None else argv, "argv_source": source,
                      "unit": UNIT_OFF, "config_path": "/var/lib/kubelet/config.yaml",
                      "config": cfg}})  # fmt: skip


# the lab's kubelet unit: installed, never enabled or started (no kubelet binary in a lab node)
UNIT_OFF = {"LoadState": "loaded", "UnitFileState": "disabled", "ActiveState": "inactive",
            "SubState": "dead"}  # fmt: skip


RO_PORT = {"pointer": "/readOnlyPort", "flags": ["--read-only-port"], "type": "int", "unset": 0,
           "op": "eq", "value": 0}  # fmt: skip


def test_kubelet_config_key_default_config_and_flag() -> None:
    v = run("kubelet_config_key", RO_PORT, kubelet({"kind": "KubeletConfiguration"}))
    assert v.status is Status.PASS
    assert v.observed == "0 (from kubelet default)"
    v = run("kubelet_config_key", RO_PORT, kubelet({"readOnlyPort": 10255}))
    assert v.status is Status.FAIL
    assert v.observed == "10255 (from /var/lib/kubelet/config.yaml)"
    flagged = kubelet({"readOnlyPort": 0}, [*KUBELET_UNIT_ARGV, "--read-only-port=10255"])
    v = run("kubelet_config_key", RO_PORT, flagged)
    assert v.status is Status.FAIL  # the flag wins over the file
    assert v.observed == "10255 (from flag of the kubelet.service)"
    running = kubelet({}, ["kubelet", "--read-only-port=0"], source="process")
    assert (
        run("kubelet_config_key", RO_PORT, running).observed
        == "0 (from flag of the running kubelet)"
    )


def test_kubelet_config_key_nested_bool_and_no_kubelet() -> None:
    p = {"pointer": "/authentication/anonymous/enabled", "flags": ["--anonymous-auth"],
         "type": "bool", "unset": True, "op": "eq", "value": False}  # fmt: skip
    assert (
        run(
            "kubelet_config_key", p, kubelet({"authentication": {"anonymous": {"enabled": False}}})
        ).status
        is Status.PASS
    )
    assert run("kubelet_config_key", p, kubelet({})).status is Status.FAIL
    assert run("kubelet_config_key", p, kubelet(None, [])).status is Status.NOT_APPLICABLE
    broken = obs(
        {
            SVC: {
                "argv": KUBELET_UNIT_ARGV,
                "unit": UNIT_OFF,
                "config_path": "/c",
                "config": {"exists": True, "content": "a: [\n"},
            }
        }
    )
    assert run("kubelet_config_key", p, broken).status is Status.ERROR


def test_kubelet_flag_only_setting() -> None:
    p = {"flags": ["--hostname-override"], "op": "absent"}
    assert run("kubelet_config_key", p, kubelet({})).status is Status.PASS
    v = run("kubelet_config_key", p, kubelet({}, [*KUBELET_UNIT_ARGV, "--hostname-override=x"]))
    assert v.status is Status.FAIL
    with pytest.raises(ValidationError):
        KINDS["kubelet_config_key"].params.model_validate({"op": "absent"})


# --- tls_client_auth ---------------------------------------------------------------------------

TLS = {"url": "https://127.0.0.1:2379/health", "ca": "/pki/etcd/ca.crt",
       "cert": "/pki/etcd/healthcheck-client.crt", "key": "/pki/etcd/healthcheck-client.key",
       "healthy": '"health":\\s*"true"'}  # fmt: skip
TLS_KEY = "tls_auth:" + json.dumps(
    {k: TLS[k] for k in ("url", "ca", "cert", "key")}, sort_keys=True
)
HEALTHY = {"status": 200, "body": '{"health":"true","reason":""}'}
REFUSED = {
    "error": "SSLError: [SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"
}


@pytest.mark.parametrize(
    ("anonymous", "certified", "status", "words"),
    [
        (REFUSED, HEALTHY, Status.PASS, "refused"),
        (HEALTHY, HEALTHY, Status.FAIL, "without a certificate was served"),
        (REFUSED, {"status": 200, "body": '{"health":"false"}'}, Status.FAIL, "not healthy"),
        (
            {"error": "ConnectionRefusedError"},
            {"error": "ConnectionRefusedError"},
            Status.FAIL,
            "ConnectionRefused",
        ),
        (REFUSED, {"status": 401, "body": "Unauthorized"}, Status.FAIL, "HTTP 401"),
    ],
)
def test_tls_client_auth(
    anonymous: dict[str, Any], certified: dict[str, Any], status: Status, words: str
) -> None:
    v = run(
        "tls_client_auth", TLS, obs({TLS_KEY: {"anonymous": anonymous, "certified": certified}})
    )
    assert v.status is status
    assert words in v.observed


def test_tls_client_auth_collector_error() -> None:
    assert run("tls_client_auth", TLS, obs({TLS_KEY: {"error": "boom"}})).status is Status.ERROR


# --- all_of ------------------------------------------------------------------------------------

PAIR = {"checks": [
    {"kind": "manifest_flag", "params": {"manifest": APISERVER, "flags": ["--tls-cert-file"], "op": "nonempty"}},
    {"kind": "manifest_flag", "params": {"manifest": APISERVER, "flags": ["--tls-private-key-file"], "op": "nonempty"}},
]}  # fmt: skip


def test_all_of_needs_every_part() -> None:
    both = obs(
        {f"read:{APISERVER}": manifest("--tls-cert-file=/a.crt", "--tls-private-key-file=/a.key")}
    )
    v = run("all_of", PAIR, both)
    assert v.status is Status.PASS
    assert "/a.crt" in v.observed and "/a.key" in v.observed
    assert v.evidence == (f"read:{APISERVER}",)  # one observation, named once
    one = obs({f"read:{APISERVER}": manifest("--tls-cert-file=/a.crt")})
    v = run("all_of", PAIR, one)
    assert v.status is Status.FAIL
    assert v.observed == "<unset> (from manifest)"  # only the failing part is shown
    assert KINDS["all_of"].wants(KINDS["all_of"].params.model_validate(PAIR))


def test_all_of_validates_its_parts() -> None:
    bad = {
        "checks": [
            PAIR["checks"][0],
            {"kind": "manifest_flag", "params": {"manifest": APISERVER, "op": "present"}},
        ]
    }
    with pytest.raises(ValidationError, match=r"checks\.1\.params\.flags"):
        KINDS["all_of"].params.model_validate(bad)
    with pytest.raises(ValidationError, match="unknown or nested kind"):
        KINDS["all_of"].params.model_validate({"checks": [PAIR["checks"][0], {"kind": "nope"}]})
    with pytest.raises(ValidationError):
        KINDS["all_of"].params.model_validate({"checks": [PAIR["checks"][0]]})


# --- files named by a manifest flag, unit drop-ins, processes in any namespace -----------------

DATA_DIR = (
    'manifest_ref_stat:{"default": "/var/lib/etcd", "flag": "--data-dir", "manifest": "'
    + ETCD
    + '"}'
)


def test_file_named_by_a_manifest_flag() -> None:
    p = {"manifest_ref": {"manifest": ETCD, "flag": "--data-dir", "default": "/var/lib/etcd"},
         "owner": "etcd", "group": "etcd"}  # fmt: skip
    good = {
        "source": "manifest",
        "path": "/var/lib/etcd",
        "stat": stat("/var/lib/etcd", "0700", "etcd", "etcd", "dir"),
    }
    v = run("file_owner", p, obs({DATA_DIR: good}))
    assert v.status is Status.PASS
    kubeadm = {
        "source": "manifest",
        "path": "/var/lib/etcd",
        "stat": stat("/var/lib/etcd", "0700", kind="dir"),
    }
    assert run("file_owner", p, obs({DATA_DIR: kubeadm})).status is Status.FAIL
    mode = {"manifest_ref": p["manifest_ref"], "max_mode": "0700"}
    loose = {
        "source": "manifest",
        "path": "/var/lib/etcd",
        "stat": stat("/var/lib/etcd", "0755", kind="dir"),
    }
    assert run("file_mode", mode, obs({DATA_DIR: loose})).status is Status.FAIL


def test_unit_dropins_are_the_target() -> None:
    p = {"dropins": "kubelet.service", "max_mode": "0600"}
    dropin = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
    unit = {"properties": {}, "fragment": stat("/lib/systemd/system/kubelet.service"),
            "dropins": [stat(dropin, "0644")]}  # fmt: skip
    v = run("file_mode", p, obs({"unit:kubelet.service": unit}))
    assert v.status is Status.FAIL
    assert dropin in v.observed
    unit["dropins"] = [stat(dropin, "0600")]
    assert run("file_mode", p, obs({"unit:kubelet.service": unit})).status is Status.PASS
    unit["dropins"] = []
    assert run("file_mode", p, obs({"unit:kubelet.service": unit})).status is Status.NOT_APPLICABLE


def test_kubelet_unit_file_is_judged_with_its_dropins() -> None:
    """CIS K8s 4.1.1/4.1.2 judge every file that makes up kubelet.service: a loose or foreign-owned
    unit file fails even when the drop-ins are right; a masked unit's /dev/null is not judged."""
    catalog = load_catalog(None, KINDS)
    mode, owner = catalog.get("cis_k8s_4_1_1"), catalog.get("cis_k8s_4_1_2")
    assert mode is not None and owner is not None
    dropin = "/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"
    unit = {"properties": {}, "fragment": stat("/usr/lib/systemd/system/kubelet.service", "0644"),
            "dropins": [stat(dropin, "0600")]}  # fmt: skip
    v = judge(mode, obs({"unit:kubelet.service": unit}))
    assert v.status is Status.FAIL
    assert v.observed == "/usr/lib/systemd/system/kubelet.service 0644"
    unit["fragment"] = stat("/usr/lib/systemd/system/kubelet.service", "0600", user="kube")
    assert judge(mode, obs({"unit:kubelet.service": unit})).status is Status.PASS
    v = judge(owner, obs({"unit:kubelet.service": unit}))
    assert v.status is Status.FAIL and "kubelet.service kube:root" in v.observed
    unit["fragment"] = {"path": "/dev/null", "exists": True, "type": "other", "mode": "0666"}
    assert judge(mode, obs({"unit:kubelet.service": unit})).status is Status.PASS
    unit["dropins"] = [stat(dropin, "0644")]
    v = judge(mode, obs({"unit:kubelet.service": unit}))
    assert v.status is Status.FAIL and v.observed == f"{dropin} 0644"


def test_process_flag_in_any_namespace() -> None:
    p = {"process": "kube-proxy", "flags": ["--metrics-bind-address"], "op": "regex",
         "value": "^127\\.0\\.0\\.1", "unset": "127.0.0.1:10249", "any_namespace": True}  # fmt: skip
    k = KINDS["process_flag"]
    assert [x.key for x in k.wants(k.params.model_validate(p))] == ["proc_any:kube-proxy"]
    running = {"running": True, "argv": ["kube-proxy", "--metrics-bind-address=0.0.0.0:10249"]}
    assert run("process_flag", p, obs({"proc_any:kube-proxy": running})).status is Status.FAIL
    assert (
        run("process_flag", p, obs({"proc_any:kube-proxy": {"running": False}})).status
        is Status.NOT_VERIFIABLE
    )


def test_kubelet_zero_duration_means_the_default() -> None:
    p = {"pointer": "/streamingConnectionIdleTimeout", "flags": ["--streaming-connection-idle-timeout"],
         "unset": "4h", "default_when": ["0s", "0"], "op": "regex", "value": "[1-9]"}  # fmt: skip
    v = run("kubelet_config_key", p, kubelet({"streamingConnectionIdleTimeout": "0s"}))
    assert v.status is Status.PASS
    assert (
        v.observed
        == "4h (from /var/lib/kubelet/config.yaml says 0s, which means the kubelet default)"
    )
    assert (
        run("kubelet_config_key", p, kubelet({"streamingConnectionIdleTimeout": "5m"})).status
        is Status.PASS
    )
    off = kubelet({}, [*KUBELET_UNIT_ARGV, "--streaming-connection-idle-timeout=0"])
    assert run("kubelet_config_key", p, off).status is Status.FAIL  # a flag of 0 really disables it


def test_subset_of_allowed_values() -> None:
    allowed = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
    p = {"pointer": "/tlsCipherSuites", "flags": ["--tls-cipher-suites"], "type": "list",
         "op": "subset", "value": allowed}  # fmt: skip
    assert (
        run("kubelet_config_key", p, kubelet({"tlsCipherSuites": allowed[:1]})).status
        is Status.PASS
    )
    weak = kubelet({"tlsCipherSuites": [*allowed, "TLS_RSA_WITH_AES_128_CBC_SHA"]})
    assert run("kubelet_config_key", p, weak).status is Status.FAIL
    assert run("kubelet_config_key", p, kubelet({})).status is Status.FAIL  # Go's defaults: not set


def test_kubelet_unset_says_where_it_looked() -> None:
    p = {"pointer": "/tlsCipherSuites", "flags": ["--tls-cipher-suites"], "type": "list",
         "op": "nonempty"}  # fmt: skip
    v = run("kubelet_config_key", p, kubelet({}))
    assert v.observed == (
        "<unset> (not on the kubelet.service's command line nor in /var/lib/kubelet/config.yaml)"
    )
