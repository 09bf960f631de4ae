"""The redaction rule: secret variables by name, vault values and private keys by pattern, and
every secret value hunted in any text, on an inventory as ansible-inventory resolves it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from casemate import redact
from casemate.inventory import Inventory
from casemate.redact import KEY_MARKER, MARKER, VAULT_MARKER, Redactor, secret_name
from casemate.runner import resolve_inventory

FIX = Path(__file__).parent.parent / "fixtures" / "inventories"
DOCS = Path(__file__).parent.parent.parent / "docs" / "harden.md"
# every secret value of fixtures/inventories/secrets.yml, and a line of its vault ciphertext
SECRETS = (
    "BecomePw-unit-4242",
    "GroupSshPw-unit-5151",
    "ApiToken-unit-7373",
    "UrlPw-unit-6262",
    "DbPw-unit-8484",
    "AlicePw-unit-9595",
    "UGVtQm9keS11bml0LTEyMTItbm90LWEta2V5LWp1c3QtYS1tYXJrZXI=",
    "3437306234613965346363396338656466336435373863620a323436346431613764653963363264",
)


def recorded() -> dict[str, Any]:
    """`ansible-inventory --list` of secrets.yml, as recorded."""
    loaded: dict[str, Any] = json.loads((FIX / "secrets.json").read_text())
    return loaded


def inventory() -> Inventory:
    return Inventory(FIX / "secrets.yml", recorded())


def hostvars(raw: dict[str, Any], host: str = "local-1") -> dict[str, Any]:
    found: dict[str, Any] = raw["_meta"]["hostvars"][host]
    return found


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


@pytest.mark.ansible
def test_recording_is_what_ansible_inventory_prints() -> None:
    live = resolve_inventory(FIX / "secrets.yml").raw
    assert hostvars(live) == hostvars(recorded())
    assert leaks(json.dumps(live)) == list(SECRETS)  # the fixture really holds every secret


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("ansible_become_password", True),
        ("ansible_password", True),
        ("ansible_pass", True),
        ("ansible_ssh_pass", True),
        ("ansible_become_pass", True),
        ("ANSIBLE_BECOME_PASS", True),
        ("db_passwd", True),
        ("ssh_key_passphrase", True),
        ("client_secret", True),
        ("clientSecret", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("GITHUB_TOKEN", True),
        ("api-key", True),
        ("tls_private_key", True),
        ("privateKey", True),
        ("registry_credentials", True),
        ("spring.datasource.password", True),
        ("password", True),
        # about a secret, not the secret: a path, a setting, a Secret's name
        ("ansible_ssh_private_key_file", False),
        ("kube_control_plane_tls_private_key_file", False),
        ("ANSIBLE_VAULT_PASSWORD_FILE", False),
        ("sshd_password_authentication", False),
        ("kube_control_plane_service_account_extend_token_expiration", False),
        ("secretName", False),
        # not secrets at all
        ("PASS_MAX_DAYS", False),
        ("bypass", False),
        ("passthrough", False),
        ("docker_daemon_tls_key", False),
        ("auditd_rules_key", False),
        ("greeting", False),
    ],
)
def test_secret_names_follow_the_documented_list(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


def test_docs_list_every_secret_word() -> None:
    section = DOCS.read_text().partition("## What run records keep, and what they never keep")[2]
    assert section, "docs/harden.md lacks the section on run records"
    for word in (*redact.SECRET_WORDS, *redact.SECRET_LAST_WORDS, *redact.ABOUT_WORDS):
        assert f"`{word}`" in section, word
    assert f"{redact.HUNT_MIN_LENGTH} characters" in section


def test_inventory_secrets_redacted_by_name_and_pattern_the_rest_untouched() -> None:
    raw = recorded()
    clean = inventory().redacted(Redactor())
    v = hostvars(clean)
    assert v["ansible_become_password"] == MARKER
    assert v["ansible_password"] == MARKER  # a group variable, as every host inherits it
    assert v["api_token"] == MARKER
    assert v["app"]["db"] == {"user": "app", "password": MARKER}
    assert v["app"]["users"] == [
        {"name": "alice", "passwd": MARKER},
        {"name": "bob", "shell": "/bin/sh"},
    ]
    assert v["app_vaulted"] == VAULT_MARKER
    assert v["tls_material"] == KEY_MARKER + "\n"
    assert v["proxy_url"] == f"http://ops:{MARKER}@proxy.invalid:3128"
    # what is not a secret stays exactly as it was
    untouched = (
        "ansible_connection",
        "ansible_python_interpreter",
        "ansible_ssh_private_key_file",
        "sshd_password_authentication",
        "kube_control_plane_service_account_extend_token_expiration",
        "greeting",
    )
    for name in untouched:
        assert v[name] == hostvars(raw)[name], name
    assert v["app"]["port"] == 5432
    assert {k: w for k, w in clean.items() if k != "_meta"} == {
        k: w for k, w in raw.items() if k != "_meta"
    }
    assert leaks(json.dumps(clean)) == []
    assert leaks(json.dumps(raw)) == list(SECRETS)  # the input itself is left alone


def test_host_and_group_names_are_not_variable_names() -> None:
    """A host or group whose name holds a secret word is no secret, nor is what it holds."""
    inv = inventory()
    clean = inv.redacted(inv.redactor())
    assert hostvars(clean, "secretstore-1") == {
        "ansible_connection": "local",
        "ansible_password": MARKER,
        "greeting": "hello from secretstore-1",
    }
    assert clean["token_vaults"] == recorded()["token_vaults"]
    assert "local" not in inv.redactor().values
    assert inv.redactor().text("hello from secretstore-1 via local") == (
        "hello from secretstore-1 via local"
    )


def test_secret_values_hunted_in_any_text_under_any_name() -> None:
    r = inventory().redactor()
    echoed = {
        "msg": "sudo with BecomePw-unit-4242 then DbPw-unit-8484",
        "nested": [{"why": 'refused "ApiToken-unit-7373"'}],
        "stdout_lines": ["AlicePw-unit-9595", "ok"],
        "key": "GroupSshPw-unit-5151",  # a key of a mapping is text too
    }
    clean = r.scrub(echoed)
    assert leaks(json.dumps(clean)) == []
    assert clean["stdout_lines"] == [MARKER, "ok"]
    # a value inside JSON text, escaped as JSON escapes it, is found too
    quoted = redact.redactor({"db_password": 'Quo"ted\\secret-unit'})
    assert "Quo" not in quoted.text(json.dumps({"a": 'x Quo"ted\\secret-unit y'}))
    # the vault ciphertext, whole or as ansible-playbook or JSON print it
    cipher = hostvars(recorded())["app_vaulted"]["__ansible_vault"]
    assert leaks(r.text(f"vars: {cipher}")) == []
    assert leaks(Redactor().text(json.dumps({"v": cipher}))) == []
    assert leaks(Redactor().text(cipher)) == []


def test_short_values_are_redacted_by_name_but_not_hunted() -> None:
    variables = {"ansible_password": "root", "owner": "root"}
    assert Redactor().variables(variables) == {"ansible_password": MARKER, "owner": "root"}
    assert redact.redactor(variables).text("owner root") == "owner root"


def test_scrub_keeps_json_valid_and_is_idempotent() -> None:
    r = inventory().redactor()
    text = json.dumps(
        {
            "stdout": 'say "BecomePw-unit-4242"\\n',
            "env": ["A=1", "DB_PASSWORD=two words", 'Q_TOKEN=with"quote'],
            "pem": hostvars(recorded())["tls_material"],
        }
    )
    once = r.text(text)
    json.loads(once)
    assert r.text(once) == once
    data = json.loads(text)
    assert r.scrub(r.scrub(data)) == r.scrub(data)
    assert inventory().redacted(r) == Inventory(FIX, inventory().redacted(r)).redacted(r)


def test_container_environments_and_flags_redacted() -> None:
    """`docker inspect` and `docker history` (stored as evidence) print a container's or image's
    environment; command lines carry --flag=value."""
    inspect = json.dumps(
        [
            {
                "Name": "/db",
                "Config": {
                    "Env": [
                        "PATH=/usr/local/bin:/usr/bin",
                        "POSTGRES_PASSWORD=Pg pw with spaces",
                        'MYSQL_ROOT_PASSWORD=esc\\aped"quote',
                        "FEATURE_TOKEN_ENABLED=true",
                    ]
                },
            }
        ]
    )
    clean = Redactor().text(inspect)
    env = json.loads(clean)[0]["Config"]["Env"]
    assert env == [
        "PATH=/usr/local/bin:/usr/bin",
        f"POSTGRES_PASSWORD={MARKER}",
        f"MYSQL_ROOT_PASSWORD={MARKER}",
        "FEATURE_TOKEN_ENABLED=true",  # yes/no/true/false/on/off carry no secret
    ]
    history = json.dumps('/bin/sh -c #(nop)  ENV API_TOKEN=abc\\"def LANG=C.UTF-8')
    assert (
        json.loads(Redactor().text(history))
        == f"/bin/sh -c #(nop)  ENV API_TOKEN={MARKER} LANG=C.UTF-8"
    )
    argv = "etcd --password=Hunter2-unit --token-auth-file=/etc/k/tokens.csv --enable-bootstrap-token-auth=true"
    assert Redactor().text(argv) == (
        f"etcd --password={MARKER} --token-auth-file=/etc/k/tokens.csv --enable-bootstrap-token-auth=true"
    )


def test_argv_flag_values_redacted() -> None:
    argv = ["etcd", "--password", "Hunter2-unit", "--token-auth-file", "/etc/k/t.csv", "--debug"]
    assert Redactor().scrub({"argv": argv}) == {
        "argv": ["etcd", "--password", MARKER, "--token-auth-file", "/etc/k/t.csv", "--debug"]
    }
    assert Redactor().scrub(["x", "--api-token", "--verbose"]) == ["x", "--api-token", "--verbose"]


def test_variable_keeps_settings_and_paths() -> None:
    r = Redactor()
    assert r.variable("sysctl_engine_host", True) is True
    assert r.variable("ansible_become_password", "x") == MARKER
    assert r.variable("ansible_become_password", True) is True  # a boolean is a setting
    assert r.variable("allowed", ["alice", "bob"]) == ["alice", "bob"]
    assert r.variable("site", {"db_token": "t0ken-value"}) == {"db_token": MARKER}


def test_markers_say_what_was_redacted() -> None:
    for marker in (MARKER, VAULT_MARKER, KEY_MARKER):
        assert re.fullmatch(r"<redacted: [a-z ]+>", marker)
