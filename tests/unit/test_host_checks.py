"""The host baseline's check kinds judged on recorded observations: conf_key (login.defs, limits,
systemd drop-ins), mount_options (/proc/self/mountinfo) and services_off (systemd units), each on
pass, fail, missing and unreadable; and the read_glob collector run for real."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from casemate.checks import builtin_kinds
from casemate.checks.base import Observations, Probe, Status, Verdict
from casemate.probe.collect import collect

from .obs import obs

KINDS = builtin_kinds()


def run(kind: str, params: dict[str, Any], o: Observations) -> Verdict:
    k = KINDS[kind]
    return k.judge(k.params.model_validate(params), o)


def text(path: str, content: str) -> dict[str, Any]:
    return {"path": path, "exists": True, "content": content, "truncated": False}


def absent(path: str) -> dict[str, Any]:
    return {"path": path, "exists": False}


# --- conf_key ----------------------------------------------------------------------------------

LOGIN_DEFS = "# comment UMASK 077\nUMASK\t\t022\nPASS_MAX_DAYS\t99999\nENCRYPT_METHOD SHA512\n"


def login(content: str | None) -> Observations:
    raw = text("/etc/login.defs", content) if content is not None else absent("/etc/login.defs")
    return obs({"read:/etc/login.defs": raw})


def umask(op: str = "regex", value: str = "^0?[0-7][2367]7$", **extra: Any) -> dict[str, Any]:
    return {"paths": ["/etc/login.defs"], "key": "UMASK", "op": op, "value": value, **extra}


def test_conf_key_words_pass_and_fail() -> None:
    v = run("conf_key", umask(), login(LOGIN_DEFS))
    assert v.status is Status.FAIL
    assert v.observed == "UMASK = 022 (/etc/login.defs:2)"  # the comment line is no setting
    assert v.evidence == ("read:/etc/login.defs",)
    assert run("conf_key", umask(), login("UMASK 027\n")).status is Status.PASS
    assert run("conf_key", umask(), login("UMASK 0077 # strict\n")).status is Status.PASS


def test_conf_key_unset_uses_the_programs_default_or_fails() -> None:
    assert run("conf_key", umask(unset="022"), login("")).status is Status.FAIL
    assert run("conf_key", umask(unset="027"), login("")).observed.endswith("(built-in default)")
    v = run("conf_key", umask(), login("# UMASK 027\n"))
    assert v.status is Status.FAIL
    assert "not set in any file" in v.observed


def test_conf_key_missing_file_and_unreadable() -> None:
    assert run("conf_key", umask(), login(None)).status is Status.FAIL
    assert (
        run("conf_key", umask(missing="not_applicable"), login(None)).status
        is Status.NOT_APPLICABLE
    )
    broken = obs({"read:/etc/login.defs": {"error": "read /etc/login.defs: Permission denied"}})
    assert run("conf_key", umask(), broken).status is Status.ERROR
    assert run("conf_key", umask(), obs({})).status is Status.ERROR  # the probe returned nothing


def test_conf_key_numbers_and_case() -> None:
    p = {
        "paths": ["/etc/login.defs"],
        "key": "PASS_MAX_DAYS",
        "type": "int",
        "op": "le",
        "value": 365,
    }
    assert run("conf_key", p, login(LOGIN_DEFS)).status is Status.FAIL
    assert run("conf_key", p, login("PASS_MAX_DAYS 90\n")).status is Status.PASS
    method: dict[str, Any] = {
        "paths": ["/etc/login.defs"],
        "key": "encrypt_method",
        "op": "regex",
        "value": "(?i)^yescrypt$",
    }
    assert run("conf_key", method, login("ENCRYPT_METHOD yescrypt\n")).status is Status.FAIL
    method["ignore_case"] = True
    assert run("conf_key", method, login("ENCRYPT_METHOD yescrypt\n")).status is Status.PASS


FAILLOCK = "# deny = 1\ndeny = 5\nunlock_time=900 # seconds\neven_deny_root\n"


def faillock(content: str) -> Observations:
    return obs({"read:/etc/security/faillock.conf": text("/etc/security/faillock.conf", content)})


def test_conf_key_assign_lines_as_pam_faillock_and_pwquality_read_them() -> None:
    deny = {"paths": ["/etc/security/faillock.conf"], "key": "deny", "format": "assign",
            "type": "int", "op": "le", "value": 5, "unset": 3}  # fmt: skip
    v = run("conf_key", deny, faillock(FAILLOCK))
    assert v.status is Status.PASS
    assert v.observed == "deny = 5 (/etc/security/faillock.conf:2)"  # the comment is no setting
    assert run("conf_key", deny, faillock("deny = 10\n")).status is Status.FAIL
    assert run("conf_key", deny, faillock("deny 4\n")).status is Status.PASS  # `=` is optional
    unlock = {**deny, "key": "unlock_time", "op": "ge", "value": 900}
    assert run("conf_key", unlock, faillock(FAILLOCK)).status is Status.PASS
    assert run("conf_key", unlock, faillock("unlock_time = 60\n")).status is Status.FAIL
    flag = {"paths": ["/etc/security/faillock.conf"], "key": "even_deny_root", "format": "assign",
            "op": "absent"}  # fmt: skip
    assert run("conf_key", flag, faillock(FAILLOCK)).status is Status.FAIL  # a bare flag is set
    assert run("conf_key", flag, faillock("# even_deny_root\n")).status is Status.PASS


LIMITS = ["/etc/security/limits.conf", "/etc/security/limits.d/*.conf"]


def limits(main: str, *dropins: tuple[str, str]) -> Observations:
    return obs(
        {
            "read:/etc/security/limits.conf": text("/etc/security/limits.conf", main),
            "read_glob:/etc/security/limits.d/*.conf": {"files": [text(p, c) for p, c in dropins]},
        }
    )


def test_conf_key_multi_word_keys_and_the_last_file_wins() -> None:
    p = {"paths": LIMITS, "key": "* hard core", "value": "0"}
    assert run("conf_key", p, limits("#* hard core 0\n")).status is Status.FAIL
    assert run("conf_key", p, limits("*  hard  core  0\n")).status is Status.PASS
    assert run("conf_key", p, limits("* soft core 0\n@staff hard core 0\n")).status is Status.FAIL
    late = limits("* hard core 0\n", ("/etc/security/limits.d/zz.conf", "* hard core unlimited\n"))
    v = run("conf_key", p, late)
    assert v.status is Status.FAIL
    assert "zz.conf:1; set 2 times, the last wins" in v.observed
    assert (
        run("conf_key", p, limits("", ("/etc/security/limits.d/a.conf", "* hard core 0"))).status
        is Status.PASS
    )
    broken = obs(
        {
            "read:/etc/security/limits.conf": text("/etc/security/limits.conf", ""),
            "read_glob:/etc/security/limits.d/*.conf": {
                "files": [{"error": "read x: Permission denied"}]
            },
        }
    )
    assert run("conf_key", p, broken).status is Status.ERROR


COREDUMP = ["/etc/systemd/coredump.conf", "/etc/systemd/coredump.conf.d/*.conf"]


def coredump(main: str | None, dropin: str | None = None) -> Observations:
    files = [text("/etc/systemd/coredump.conf.d/casemate.conf", dropin)] if dropin else []
    return obs(
        {
            "read:/etc/systemd/coredump.conf": (
                text("/etc/systemd/coredump.conf", main) if main is not None else absent("x")
            ),
            "read_glob:/etc/systemd/coredump.conf.d/*.conf": {"files": files},
        }
    )


def test_conf_key_ini_sections_and_drop_ins() -> None:
    p = {
        "paths": COREDUMP,
        "format": "ini",
        "section": "Coredump",
        "key": "Storage",
        "unset": "external",
        "value": "none",
    }
    stock = "[Coredump]\n#Storage=external\n#ProcessSizeMax=2G\n"
    v = run("conf_key", p, coredump(stock))
    assert v.status is Status.FAIL
    assert v.observed == "Storage = external (built-in default)"
    assert run("conf_key", p, coredump(stock, "[Coredump]\nStorage=none\n")).status is Status.PASS
    other = "[Journal]\nStorage=none\n"  # the same key in another section is not this setting
    assert run("conf_key", p, coredump(stock, other)).status is Status.FAIL
    assert run("conf_key", p, coredump(None)).status is Status.FAIL
    assert (
        run("conf_key", {**p, "missing": "not_applicable"}, coredump(None)).status
        is Status.NOT_APPLICABLE
    )


def test_conf_key_params_are_checked() -> None:
    with pytest.raises(ValidationError, match="section goes with format: ini"):
        KINDS["conf_key"].params.model_validate(
            {"paths": ["/x"], "key": "k", "section": "S", "value": 1}
        )
    with pytest.raises(ValidationError, match="needs a value"):
        KINDS["conf_key"].params.model_validate({"paths": ["/x"], "key": "k", "op": "eq"})
    with pytest.raises(ValidationError):
        KINDS["conf_key"].params.model_validate({"paths": [], "key": "k", "value": 1})


# --- mount_options -----------------------------------------------------------------------------

ROOT = "352 300 0:60 / / rw,relatime master:1 - overlay overlay rw,lowerdir=/a\n"


def mounts(content: str) -> Observations:
    return obs({"read:/proc/self/mountinfo": text("/proc/self/mountinfo", content)})


TMP = {"mount_point": "/tmp", "options": ["nosuid", "nodev", "noexec"]}


def test_mount_options_pass_fail_and_not_a_mount() -> None:
    good = ROOT + "421 352 0:106 / /tmp rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw\n"
    v = run("mount_options", TMP, mounts(good))
    assert v.status is Status.PASS
    assert v.observed == "/tmp (tmpfs) rw,nosuid,nodev,noexec,relatime"
    assert v.evidence == ("read:/proc/self/mountinfo",)
    bad = ROOT + "421 352 0:106 / /tmp rw,nodev,relatime - tmpfs tmpfs rw,size=64k\n"
    v = run("mount_options", TMP, mounts(bad))
    assert v.status is Status.FAIL
    assert v.observed.endswith("lacks nosuid,noexec")
    assert run("mount_options", TMP, mounts(ROOT)).status is Status.NOT_APPLICABLE
    assert run("mount_options", {**TMP, "missing": "fail"}, mounts(ROOT)).status is Status.FAIL


def test_mount_options_top_of_the_stack_and_escapes() -> None:
    stacked = (
        ROOT
        + "421 352 0:106 / /tmp rw,nosuid,nodev,noexec - tmpfs tmpfs rw\n"
        + "430 421 0:107 / /tmp rw,relatime shared:5 - tmpfs tmpfs rw\n"  # mounted over it later
    )
    assert run("mount_options", TMP, mounts(stacked)).status is Status.FAIL
    spaced = ROOT + "440 352 0:108 / /srv/my\\040data rw,nosuid - ext4 /dev/sdb rw\n"
    p = {"mount_point": "/srv/my data", "options": ["nosuid"]}
    assert run("mount_options", p, mounts(spaced)).status is Status.PASS
    superblock = ROOT + "441 352 0:109 / /tmp rw - tmpfs tmpfs rw,nosuid,nodev,noexec\n"
    assert run("mount_options", TMP, mounts(superblock)).status is Status.PASS


def test_mount_options_unreadable() -> None:
    broken = obs({"read:/proc/self/mountinfo": {"error": "read: Permission denied"}})
    assert run("mount_options", TMP, broken).status is Status.ERROR
    gone = obs({"read:/proc/self/mountinfo": absent("/proc/self/mountinfo")})
    assert run("mount_options", TMP, gone).status is Status.ERROR


# --- services_off ------------------------------------------------------------------------------


def unit(load: str, state: str = "", active: str = "inactive") -> dict[str, Any]:
    props = {"LoadState": load, "UnitFileState": state, "ActiveState": active}
    return {"properties": props, "fragment": {"exists": load == "loaded"}, "dropins": []}


UNITS = {"units": ["avahi-daemon", "cups.socket"]}


def units(avahi: dict[str, Any], cups: dict[str, Any]) -> Observations:
    return obs({"unit:avahi-daemon.service": avahi, "unit:cups.socket": cups})


def test_services_off_none_installed_passes() -> None:
    v = run("services_off", UNITS, units(unit("not-found"), unit("not-found")))
    assert v.status is Status.PASS
    assert v.observed == "not installed: avahi-daemon.service, cups.socket"
    assert v.evidence == ("unit:avahi-daemon.service", "unit:cups.socket")


@pytest.mark.parametrize(
    ("avahi", "status"),
    [
        (unit("loaded", "enabled", "active"), Status.FAIL),
        (unit("loaded", "enabled", "inactive"), Status.FAIL),  # starts at the next boot
        (unit("loaded", "disabled", "active"), Status.FAIL),  # runs now
        (unit("loaded", "disabled", "inactive"), Status.PASS),
        (unit("masked", "masked", "inactive"), Status.PASS),
        (unit("loaded", "static", "failed"), Status.PASS),
    ],
)
def test_services_off_judges_each_installed_unit(avahi: dict[str, Any], status: Status) -> None:
    v = run("services_off", UNITS, units(avahi, unit("not-found")))
    assert v.status is status
    assert "avahi-daemon.service" in v.observed


def test_services_off_unreadable() -> None:
    broken = units({"error": "systemctl show: Failed to connect to bus"}, unit("not-found"))
    assert run("services_off", UNITS, broken).status is Status.ERROR


# --- the read_glob collector, for real ---------------------------------------------------------


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str


class Local:
    def run(self, command: str) -> Done:
        p = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        return Done(p.returncode, p.stdout, p.stderr)


def test_read_glob_reads_every_file_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.conf").write_text("* hard core 0\n")
    (tmp_path / "a.conf").write_text("* hard core unlimited\n")
    (tmp_path / "dir.conf").mkdir()  # not a file: left out
    probe = Probe("read_glob", str(tmp_path / "*.conf"))
    none = Probe("read_glob", str(tmp_path / "nothing" / "*.conf"))
    outcome = collect("local", Local(), [probe, none])
    assert outcome.observations is not None, outcome.error
    files = outcome.observations.get(probe)["files"]
    assert [Path(f["path"]).name for f in files] == ["a.conf", "b.conf"]
    assert files[1]["content"] == "* hard core 0\n"
    assert outcome.observations.get(none) == {"files": []}
    p = {"paths": [str(tmp_path / "*.conf")], "key": "* hard core", "value": "0"}
    assert run("conf_key", p, outcome.observations).status is Status.PASS
