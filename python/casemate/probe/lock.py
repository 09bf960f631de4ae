# casemate host lock: runs ON THE TARGET HOST in one command and prints one JSON document.
# Any python3 >= 3.6 with the standard library alone (like probe/remote.py). The controller sets
# REQUEST before sending (python/casemate/hostlock.py); the lock lives in /run (tmpfs: a reboot
# frees it), and every decision on it is taken under flock(2) on its directory, so two controllers
# that reach the host at the same moment are served one after the other.
import fcntl
import json
import os
import sys
import time

# replaced by the controller: {"action": "acquire"|"peek"|"release", "dir": ..., "run_id": ...,
# "controller": ..., "pid": ..., "kind": ..., "ttl": seconds}
REQUEST = {}
NAME = "lock"
FORMAT = 1


def iso(seconds):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def parse_iso(text):
    """Seconds since the epoch of a UTC time written by iso(); ValueError otherwise."""
    import calendar

    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def parse_record(text):
    """The record of a lock file, or None when it is not one casemate wrote (unreadable)."""
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("casemate_lock") != FORMAT:
        return None
    for key in ("run_id", "controller", "started", "expires"):
        if not isinstance(record.get(key), str) or not record[key]:
            return None
    try:
        parse_iso(record["started"])
        parse_iso(record["expires"])
    except ValueError:
        return None
    return record


def holder(path, now, ttl):
    """The live record held at `path` (a dict), or None when there is none or it expired. A file
    that is not a casemate record (hand-made, truncated) holds the host until its modification
    time plus `ttl`, and is named so: it never blocks a host for ever, nor is it ignored."""
    try:
        with open(path) as handle:
            text = handle.read()
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    record = parse_record(text)
    if record is None:
        record = {
            "casemate_lock": FORMAT,
            "run_id": "unknown (not a casemate lock record)",
            "controller": "unknown",
            "started": iso(mtime),
            "expires": iso(mtime + ttl),
            "unreadable": True,
        }
    if parse_iso(record["expires"]) <= now:
        record["expired"] = True
    return record


def write(path, record):
    partial = "%s.%d.partial" % (path, os.getpid())
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as handle:
        os.fchmod(fd, 0o644)
        handle.write(json.dumps(record, sort_keys=True) + "\n")
    os.replace(partial, path)


def decide(request, now):
    """Take, renew, peek at or release the lock in request["dir"]; the answer as a dict."""
    directory = request["dir"]
    path = os.path.join(directory, NAME)
    action = request["action"]
    ttl = int(request["ttl"])
    if action == "peek":  # reads only: needs no privilege and takes no flock
        found = holder(path, now, ttl)
        if found is None or found.get("expired"):
            return {"state": "free", "stale": found}
        return {"state": "busy", "holder": found}
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    guard = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        found = holder(path, now, ttl)
        ours = found is not None and found["run_id"] == request["run_id"]
        if action == "release":
            if not ours:
                return {"state": "not_held", "holder": found}
            os.unlink(path)
            return {"state": "released"}
        if found is not None and not ours and not found.get("expired"):
            return {"state": "busy", "holder": found}
        record = {
            "casemate_lock": FORMAT,
            "run_id": request["run_id"],
            "controller": request["controller"],
            "pid": request["pid"],
            "kind": request["kind"],
            "started": found["started"] if ours else iso(now),
            "expires": iso(now + ttl),
        }
        write(path, record)
        answer = {"state": "held", "holder": record}
        if found is not None and not ours:
            answer["took_over"] = found
        return answer
    finally:
        os.close(guard)  # closing drops the flock


def main():
    try:
        answer = decide(REQUEST, time.time())
    except (OSError, ValueError, KeyError) as exc:
        answer = {"state": "error", "error": "%s: %s" % (type(exc).__name__, exc)}
    sys.stdout.write(json.dumps({"casemate_lock": FORMAT, "answer": answer}) + "\n")


if __name__ == "__main__":
    main()
