#!/bin/sh
# What a harden run may change on a node, printed in a stable order: every file, link and
# directory under /etc, /usr/local, /opt and /var/lib/casemate (type, mode, owner, size, target,
# content), and the main PID and start of each service casemate configures (a restart shows).
set -eu
for d in /etc /usr/local /opt /var/lib/casemate; do
    [ -e "$d" ] || continue
    find "$d" -xdev -printf '%p %y %m %u:%g %s %l\n'
    find "$d" -xdev -type f -exec sha256sum {} +
done | LC_ALL=C sort
for unit in docker.service docker.socket containerd.service ssh.service ssh.socket; do
    systemctl show -p Id,MainPID,ActiveState,ActiveEnterTimestampMonotonic "$unit"
done
