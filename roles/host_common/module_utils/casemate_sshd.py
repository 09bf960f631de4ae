"""casemate's readers of the SSH server: `sshd -T` output, the Match blocks it leaves out, and SSH
key blobs. A sibling of casemate_host.py (read its docstring): imported by the sshd role's modules
as ansible.module_utils.casemate_sshd and embedded in the probe; standard library only, python3 >=
3.6. Functions that run a command take `run` (argv -> (rc, stdout, stderr))."""

import base64
import glob
import hashlib
import os
import re
import struct

SSH_DIR = "/etc/ssh"
# sshd -T prints these as one comma-separated list
COMMA_LISTS = (
    "kexalgorithms",
    "ciphers",
    "macs",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
)
# sshd -T prints these in seconds, whatever unit the configuration used
TIME_OPTIONS = ("logingracetime", "clientaliveinterval")
TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_INCLUDE_DEPTH = 16  # sshd's own limit (READCONF_MAX_DEPTH)


# --- configuration text --------------------------------------------------------------------------


def words(line):
    """(keyword lowercased, argument text) of a configuration line, or (None, None)."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None, None
    parts = re.split(r"[\s=]+", text, maxsplit=1)
    return parts[0].lower(), (parts[1].strip() if len(parts) > 1 else "")


def include_targets(arg, ssh_dir=SSH_DIR):
    """The patterns an Include line names, relative ones under /etc/ssh as sshd reads them."""
    return [p if p.startswith("/") else os.path.join(ssh_dir, p) for p in arg.split()]


def seconds(text):
    """sshd's time format (1h30m, 90, 2m) in seconds, as sshd -T prints it; None if unreadable."""
    parts = re.findall(r"(\d+)([smhdw]?)", text.lower())
    if not parts or "".join(n + u for n, u in parts) != text.lower():
        return None
    return str(sum(int(n) * TIME_UNITS[u] for n, u in parts))


# --- the effective configuration -----------------------------------------------------------------


def parse_effective(text):
    """option (lowercase) -> [value, ...] of `sshd -T` output, in the order printed."""
    found = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key:
            found.setdefault(key.lower(), []).append(value.strip())
    return found


def match_entries(main_path, read, expand):
    """Options set inside Match blocks, which `sshd -T` leaves out, in sshd's reading order:
    [{file, line, match, option, value}], `line` counted from 1. `read(path)` gives a file's text
    (None: not read); `expand(pattern)` the files an Include pattern names, sorted. A Match in the
    main file lasts to its end; an Include read inside a Match puts the whole included file under
    it; a Match inside an included file lasts to the end of that file. Includes nested deeper than
    sshd allows raise ValueError (sshd refuses such a configuration too)."""
    found = []

    def scan(path, match, depth):
        if depth > MAX_INCLUDE_DEPTH:
            raise ValueError("Include nested too deep at %s" % path)
        text = read(path)
        if text is None:
            return
        for number, line in enumerate(text.splitlines(), start=1):
            key, arg = words(line)
            if key is None:
                continue
            if key == "match":
                match = "Match %s" % arg
            elif key == "include":
                for pattern in include_targets(arg):
                    for target in expand(pattern):
                        scan(target, match, depth + 1)
            elif match:
                entry = {"file": path, "line": number, "match": match, "option": key, "value": arg}
                found.append(entry)

    scan(main_path, "", 0)
    return found


def read_file(path):
    """A file's text, for match_entries on the host's own files (OSError propagates)."""
    with open(path) as handle:
        return handle.read()


def glob_sorted(pattern):
    """The files an Include pattern names on the host, for match_entries."""
    return sorted(glob.glob(pattern))


# --- keys ----------------------------------------------------------------------------------------
# Cannot tell (not a key line, a truncated or garbled blob): (None, None).


def _read_string(blob, offset):
    (size,) = struct.unpack(">I", blob[offset : offset + 4])
    if offset + 4 + size > len(blob):
        raise ValueError("truncated key blob")
    return blob[offset + 4 : offset + 4 + size], offset + 4 + size


def blob_info(blob):
    """(type, bits) of a decoded OpenSSH public key blob."""
    kind, offset = _read_string(blob, 0)
    kind = kind.decode()
    if kind == "ssh-rsa":
        _, offset = _read_string(blob, offset)  # the public exponent, then the modulus
        n, _ = _read_string(blob, offset)
        return "rsa", int.from_bytes(n, "big").bit_length()
    if kind == "ssh-dss":
        prime, _ = _read_string(blob, offset)
        return "dsa", int.from_bytes(prime, "big").bit_length()
    if kind.startswith("ecdsa-sha2-nistp"):
        return "ecdsa", int(kind[len("ecdsa-sha2-nistp") :])
    if kind == "ssh-ed25519":
        return "ed25519", 256
    return kind, None


def key_info(public_line):
    """(type, bits) of an OpenSSH public key line (`TYPE BLOB [comment]`), read from the blob."""
    parts = public_line.split()
    if len(parts) < 2:
        return None, None
    try:
        return blob_info(base64.b64decode(parts[1]))
    except (ValueError, struct.error, UnicodeDecodeError):
        return None, None


def key_blob(line):
    """(type, base64 blob) of an authorized_keys or .pub line, options skipped."""
    tokens = re.findall(r'(?:[^\s"]+|"[^"]*")+', line)
    for i, token in enumerate(tokens):
        if re.match(r"^(ssh-|ecdsa-|sk-)", token) and i + 1 < len(tokens):
            return token, tokens[i + 1]
    return None, None


def key_fingerprint(blob):
    """SHA256:... as ssh-keygen -l and sshd's log print it."""
    try:
        digest = hashlib.sha256(base64.b64decode(blob)).digest()
    except ValueError:
        return "unreadable key"
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def host_key_line(path, run):
    """The public half of a host key: its .pub file, else derived with ssh-keygen -y ('' when
    neither works)."""
    try:
        with open(path + ".pub") as handle:
            return handle.read().strip()
    except OSError:
        rc, out, _ = run(["ssh-keygen", "-y", "-f", path])
        return out.strip() if rc == 0 else ""


def host_keys(options, run, ssh_dir=SSH_DIR):
    """Every host key sshd loads (`options`: parse_effective of sshd -T) and every
    ssh_host_*_key in /etc/ssh: [{path, configured, exists, type, bits}], by path."""
    configured = options.get("hostkey", [])
    paths = sorted(set(configured) | set(glob.glob(os.path.join(ssh_dir, "ssh_host_*_key"))))
    keys = []
    for path in paths:
        entry = {"path": path, "configured": path in configured, "exists": os.path.exists(path)}
        if entry["exists"]:
            entry["type"], entry["bits"] = key_info(host_key_line(path, run))
        keys.append(entry)
    return keys
