#!/bin/sh
# Starts a GNOME Shell test session as the user UID:GID: with ROOT (a Debian root file system),
# after mounting what the shell needs in it (this script then runs in a mount namespace of its
# own, so the mounts vanish with the session), chrooted into it; with ROOT empty, on the host.
# DIR is the session's runtime directory as seen from inside the root; session.sh is in it.
# Usage: start.sh ROOT UID GID DIR
set -eu
root=$1 uid=$2 gid=$3 dir=$4
if [ -n "$root" ]; then
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  mount --bind /dev "$root/dev"
  mount --bind /dev/pts "$root/dev/pts"
  # The /dev bind does not carry the host's /dev/shm mount: without it, shared memory fails.
  mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
  mount -t tmpfs tmpfs "$root/run"
else
  root=/
fi
exec chroot --userspec="$uid:$gid" --groups="$gid" "$root" /bin/sh "$dir/session.sh"
