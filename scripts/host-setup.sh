#!/bin/sh
# Prepare this machine for casemate's lab: Debian packages, a running dockerd, the venv.
# Idempotent: a second run only checks. Used by `make demo`, `make test` and .ci/run.
set -eu
cd "$(dirname "$0")/.."

say() { printf 'host-setup: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    say "must run as root (the lab builds images with debootstrap and talks to dockerd)"
    exit 2
fi

missing=""
command -v dockerd >/dev/null 2>&1 || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || missing="$missing debootstrap"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
# the SSH lab tests log in to nodes over SSH (ssh, ssh-keygen), as Ansible's ssh connection does
command -v ssh >/dev/null 2>&1 && command -v ssh-keygen >/dev/null 2>&1 || missing="$missing openssh-client"
# the HTML report test opens the report in headless Chromium (a screenshot and the DOM after its JS)
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
# the history store's unit tests start a real PostgreSQL server of their own (initdb + pg_ctl)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
if [ -n "$missing" ]; then
    say "installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Start dockerd unless one already answers. Never touch a running daemon.
if ! docker info >/dev/null 2>&1; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        say "starting docker.service"
        systemctl start docker
    else
        say "starting dockerd in the background (log: /var/log/casemate-dockerd.log)"
        nohup setsid dockerd >/var/log/casemate-dockerd.log 2>&1 </dev/null &
    fi
    i=0
    until docker info >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 60 ]; then
            say "dockerd did not answer within 60 s; see /var/log/casemate-dockerd.log"
            exit 3
        fi
        sleep 1
    done
fi

# The venv, reinstalled only when pyproject.toml changed since the last install.
if [ ! -x .venv/bin/python ]; then
    say "creating .venv"
    python3 -m venv .venv
fi
stamp=.venv/.casemate-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing casemate and its tools into .venv (a few minutes the first time)"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    # pip writes the bytecode on one core: left to compileall, on every core (half the time)
    .venv/bin/python -m pip install -q --no-compile -e '.[dev]'
    .venv/bin/python -m compileall -q -j 0 .venv/lib >/dev/null || true  # as pip: a file that
    # does not compile (a package's Python 2 example) is left to fail when imported, if ever
    touch "$stamp"
fi
# casemate's own modules as bytecode: an editable install leaves them as source, and where
# PYTHONDONTWRITEBYTECODE is set every casemate command (hundreds in `make test`) would compile them
# again (about 0.1 s of CPU each). Only files changed since the last compile are compiled.
.venv/bin/python -m compileall -q -j 0 python >/dev/null || true
say "ready: $(docker version --format 'dockerd {{.Server.Version}}'), $(.venv/bin/casemate version 2>/dev/null | sed 's/^/casemate /')"
