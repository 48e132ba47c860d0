#!/bin/sh
# Builds the Debian 13 "trixie" root file system that runs GNOME Shell 48 (Tails 7's) for the
# tests: debootstrap (minbase) from MIRROR, then PACKAGES without recommends, and the ordinary
# user tbtest (uid 1000) who runs the session. Runs as root inside its own mount namespace
# (unshare --mount --propagation private), so that the mounts it makes vanish with it.
# Usage: build-trixie.sh ROOT MIRROR PACKAGES...
set -eu
root=$1 mirror=$2
shift 2
debootstrap --variant=minbase trixie "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  { tail -30 "$root.debootstrap.log" >&2; exit 1; }
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs tmpfs "$root/run"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# No service starts in the chroot while packages are installed.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
export DEBIAN_FRONTEND=noninteractive
chroot "$root" apt-get install -y --no-install-recommends "$@" >"$root.apt.log" 2>&1 ||
  { tail -30 "$root.apt.log" >&2; exit 1; }
chroot "$root" apt-get clean
# The locales a session can start in (gnomeshell.Locales): GTK and GNOME Shell read their
# language and text direction from setlocale, which fails for a locale not generated.
printf 'ar_EG.UTF-8 UTF-8\nfr_FR.UTF-8 UTF-8\n' >"$root/etc/locale.gen"
chroot "$root" locale-gen >"$root.locale-gen.log" 2>&1 ||
  { tail -30 "$root.locale-gen.log" >&2; exit 1; }
chroot "$root" useradd -M -d /nonexistent -u 1000 -U -s /usr/sbin/nologin tbtest
