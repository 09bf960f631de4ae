"""What a run record must never keep, and how it is taken out. The one list of secret-marking names
lives here; run records, reports, observations and ansible-runner's artifacts all pass through it.

Three rules, documented in docs/harden.md ("What run records keep, and what they never keep"):

- By name: a variable (inventory, environment, extra vars) whose name marks a secret has its text
  or number replaced by a marker. Booleans stay (they are settings, not secrets).
- By value, whatever the name: Ansible Vault values and private key blocks.
- By value, anywhere in any text: every secret value found by the two rules above (at least
  HUNT_MIN_LENGTH characters), since a module or command may echo a value under another name;
  `NAME=value` assignments, `--name=value` flags and the word after a `--name` flag in an argv
  list, whose NAME marks a secret (container environments, image history, command lines); the
  password of a `scheme://user:password@host` URL.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MARKER = "<redacted: secret>"
VAULT_MARKER = "<redacted: vault value>"
KEY_MARKER = "<redacted: private key>"
_MARKED = "<redacted: "

# Substrings of a name (lowercase, words joined by "_") that mark a secret...
SECRET_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "private_key",
    "privatekey",
    "api_key",
    "apikey",
    "credential",
)
# ...a last word that marks one too (ansible_pass, ansible_ssh_pass, ansible_become_pass)...
SECRET_LAST_WORDS = ("pass",)
# ...unless the last word says the variable is about a secret, not the secret itself
# (kube_control_plane_tls_private_key_file, sshd_password_authentication, a Secret's name).
ABOUT_WORDS = (
    "file",
    "path",
    "dir",
    "directory",
    "mode",
    "owner",
    "group",
    "bits",
    "algorithm",
    "algorithms",
    "type",
    "length",
    "authentication",
    "expiration",
    "expiry",
    "duration",
    "ttl",
    "timeout",
    "webhook",
    "name",
)
# A value that is one of these words carries no secret, whatever its name says.
SETTING_WORDS = frozenset({"", "yes", "no", "true", "false", "on", "off"})
# Shorter values are redacted where they stand (by name) but not hunted in free text: they would
# match ordinary words and erase the evidence around them.
HUNT_MIN_LENGTH = 6

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_VAULT_KEY = "__ansible_vault"
_VAULT_TEXT = re.compile(r"\$ANSIBLE_VAULT;[^\n]*(?:\n[ \t]*[0-9a-fA-F]+)*\n?")
_VAULT_ESCAPED = re.compile(r"\$ANSIBLE_VAULT;[^\\\s\"]*(?:\\n[ \t]*[0-9a-fA-F]+)*(?:\\n)?")
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?P<kind>[A-Z0-9 ]*)PRIVATE KEY-----"
    r"(?:.*?-----END (?P=kind)PRIVATE KEY-----|.*\Z)",
    re.DOTALL,
)
# The password of a URL: scheme://user:PASSWORD@host (proxy settings, registry mirrors, testinfra).
_URL_PASSWORD = re.compile(r"(?<=://)([^/\s:@\"'<>]*):([^/\s@\"'<>]+)@")
# NAME=value: an environment entry, a shell assignment, a Dockerfile ENV or ARG, a --flag=value.
_ASSIGNMENT = re.compile(r"(?<![\w.\-])-{0,2}([A-Za-z_][\w.\-]*)=")
_FLAG = re.compile(r"-{1,2}([A-Za-z][\w.\-]*)")
_ASSIGNMENT_ENDS = " \t\r\n\"';&|,)"


def secret_name(name: str) -> bool:
    """Whether a variable's name marks a secret (case-insensitive; camelCase, dots and dashes are
    read as word breaks)."""
    words = _SEPARATORS.sub("_", _CAMEL.sub("_", name).lower()).strip("_")
    parts = words.split("_")
    if parts[-1] in ABOUT_WORDS:
        return False
    return any(w in words for w in SECRET_WORDS) or parts[-1] in SECRET_LAST_WORDS


def _vault(value: Any) -> str | None:
    """The ciphertext of a vault value: `{"__ansible_vault": ...}` as ansible-inventory prints
    it, or the `$ANSIBLE_VAULT;...` text of a `!vault` value."""
    if isinstance(value, Mapping) and isinstance(value.get(_VAULT_KEY), str):
        return str(value[_VAULT_KEY])
    if isinstance(value, str) and value.lstrip().startswith("$ANSIBLE_VAULT;"):
        return value
    return None


def _secret_leaves(value: Any) -> Iterable[str]:
    """Every text or number inside a secret variable's value (booleans are settings)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _secret_leaves(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_leaves(item)
    elif isinstance(value, str):
        if value.strip().lower() not in SETTING_WORDS:
            yield value
            yield value.strip()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)


def _found(data: Any, under_secret: bool = False) -> Iterable[str]:
    """Every secret value in variables: those under a secret name, vault ciphertexts, private
    key blocks."""
    vault = _vault(data)
    if vault is not None:
        yield vault.strip()
    elif isinstance(data, Mapping):
        for key, value in data.items():
            if under_secret or secret_name(str(key)):
                yield from _secret_leaves(value)
                yield from _found(value, under_secret=True)
            else:
                yield from _found(value)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from _found(item, under_secret)
    elif isinstance(data, str):
        yield from (m.group(0).strip() for m in _PRIVATE_KEY.finditer(data))


def secret_values(*variable_sets: Mapping[str, Any]) -> tuple[str, ...]:
    """The values to hunt for in every stored text: the secret values of `variable_sets` (a host's
    variables, a group's, an environment) long enough to hunt, in their plain and JSON-escaped
    forms, longest first."""
    found: set[str] = set()
    for variables in variable_sets:
        for value in _found(variables):
            if len(value) >= HUNT_MIN_LENGTH and not value.startswith(_MARKED):
                found.add(value)
                found.add(json.dumps(value)[1:-1])  # as it stands inside JSON text
                found.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return tuple(sorted(found, key=lambda v: (-len(v), v)))


def _assignment_end(text: str, start: int, quoted: bool) -> int:
    """Where the value of a NAME=value assignment that starts at `start` ends. Inside a quoted
    (JSON) string it runs to the closing quote; otherwise to a blank or a shell separator, or to
    its own closing quote. Backslash escapes are kept whole, so JSON text stays valid."""
    i, n = start, len(text)
    if not quoted and i < n and text[i] in "\"'":
        close = text.find(text[i], i + 1)
        return n if close < 0 else close + 1
    stops = '"' if quoted else _ASSIGNMENT_ENDS
    while i < n and text[i] not in stops:
        i += 2 if text[i] == "\\" else 1
    return min(i, n)


def _assignments(text: str) -> str:
    if "=" not in text:
        return text
    out: list[str] = []
    done = 0
    for m in _ASSIGNMENT.finditer(text):
        if m.start() < done or not secret_name(m.group(1)):
            continue
        start = m.end()
        before = text[m.start() - 1] if m.start() > 0 else "\n"
        flag = m.group(0).startswith("-")
        if before == "\n" and not flag and text[start : start + 1] not in ("'", '"'):
            # a line of its own (an environment entry, an env file): the value is the whole line
            newline = text.find("\n", start)
            end = len(text) if newline < 0 else newline
        else:
            end = _assignment_end(text, start, quoted=before == '"')
        value = text[start:end]
        if text.startswith(_MARKED, start) or value.strip("\"'").strip().lower() in SETTING_WORDS:
            continue
        out.append(text[done:start] + MARKER)
        done = end
    return "".join(out) + text[done:] if out else text


def _once(text: str, done: dict[str, str], redact: Callable[[str], str]) -> str:
    """`redact(text)`, worked out once per distinct text of one scrub."""
    found = done.get(text)
    if found is None:
        found = done[text] = redact(text)
    return found


@dataclass(frozen=True, slots=True)
class Redactor:
    """Takes secrets out of whatever a run stores. `values` are the secret values to hunt for
    (from `secret_values`); without them only the name and pattern rules apply."""

    values: tuple[str, ...] = ()

    def text(self, text: str) -> str:
        """A text with every known secret value, vault value, private key block and secret
        NAME=value assignment replaced by a marker."""
        if "$ANSIBLE_VAULT;" in text:
            text = _VAULT_ESCAPED.sub(VAULT_MARKER, _VAULT_TEXT.sub(VAULT_MARKER, text))
        if "PRIVATE KEY-----" in text:
            text = _PRIVATE_KEY.sub(KEY_MARKER, text)
        for value in self.values:
            if value in text:
                text = text.replace(value, MARKER)
        if "://" in text:
            text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MARKER}@", text)
        return _assignments(text)

    def scrub(self, data: Any) -> Any:
        """JSON-like data with every string passed through `text` (keys included) and every
        vault value replaced; the shape is kept, so JSON stays valid and schemas still hold."""
        return self._scrub(data, {}, {})

    def _scrub(self, data: Any, done: dict[str, str], keys: dict[str, str]) -> Any:
        """`scrub`, each distinct string redacted once per call (`done`): hosts of one kind answer
        with the same strings, so a report of many hosts costs little more than one."""
        kind = type(data)  # JSON's own types first, by exact type: a report holds 100,000 values
        if kind is str:
            return _once(data, done, self._string)
        if kind is dict and not isinstance(data.get(_VAULT_KEY), str):
            return {
                _once(str(k), keys, self.text): self._scrub(v, done, keys) for k, v in data.items()
            }
        if kind is bool or kind is int or kind is float or data is None:
            return data
        if _vault(data) is not None:
            return VAULT_MARKER
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, Mapping):
            return {self.text(str(k)): self._scrub(v, done, keys) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self._scrub(item, done, keys) for item in _flag_values(data)]
        return data

    def _string(self, data: str) -> str:
        return VAULT_MARKER if data.lstrip().startswith("$ANSIBLE_VAULT;") else self.text(data)

    def variables(self, data: Mapping[str, Any]) -> Any:
        """A mapping of variables (a host's, a group's, an environment): those whose name marks a
        secret, at any depth, are replaced by a marker, then everything is scrubbed."""
        return self.scrub(_by_name(data))

    def variable(self, name: str, value: Any) -> Any:
        """One variable, as `variables` would store it."""
        return self.scrub(_marked(value) if secret_name(name) else _by_name(value))


def _flag_values(items: list[Any] | tuple[Any, ...]) -> list[Any]:
    """A command line as a list (a process's argv): the word after a `--name` flag whose name
    marks a secret is its value (`--password`, `hunter2`)."""
    out = list(items)
    for i, (flag, value) in enumerate(itertools.pairwise(items)):
        if (
            isinstance(flag, str)
            and isinstance(value, str)
            and (m := _FLAG.fullmatch(flag))
            and secret_name(m.group(1))
            and not value.startswith("-")
            and value.strip().lower() not in SETTING_WORDS
        ):
            out[i + 1] = MARKER
    return out


def _marked(value: Any) -> Any:
    """A secret variable's value with every text and number replaced by the marker."""
    if _vault(value) is not None:
        return VAULT_MARKER
    if isinstance(value, Mapping):
        return {k: _marked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_marked(v) for v in value]
    if isinstance(value, str):
        return value if value.strip().lower() in SETTING_WORDS else MARKER
    if isinstance(value, int | float) and not isinstance(value, bool):
        return MARKER
    return value


def _by_name(data: Any) -> Any:
    if isinstance(data, Mapping) and _vault(data) is None:
        return {k: _marked(v) if secret_name(str(k)) else _by_name(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_by_name(v) for v in data]
    return data


def redactor(*variable_sets: Mapping[str, Any]) -> Redactor:
    """A redactor hunting every secret value of `variable_sets` (mappings whose keys are variable
    names: a host's variables, a group's, an environment; never a mapping of host names)."""
    return Redactor(secret_values(*variable_sets))
