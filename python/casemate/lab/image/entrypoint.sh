#!/bin/sh
# casemate lab node: make /sys and the cgroup hierarchies writable, then boot systemd.
# Docker hands a container /sys and every cgroup v1 hierarchy read-only; systemd and the node's own
# dockerd need them writable (else every inner `docker run` fails with "mkdir
# /sys/fs/cgroup/cpuset/docker: read-only file system"). A plain `remount,rw` of a cgroup mount
# fails with "mount point is busy"; a bind remount works.
say() { echo "casemate-entrypoint: $*" >&2; }

mount -o remount,rw /sys || say "cannot remount /sys read-write"
mount -o remount,rw /sys/fs/cgroup || say "cannot remount /sys/fs/cgroup read-write"
while read -r _source target fstype _rest; do
    case "$fstype" in
        cgroup | cgroup2)
            mount -o remount,bind,rw "$target" || say "cannot remount $target read-write" ;;
    esac
done </proc/mounts
exec /sbin/init
