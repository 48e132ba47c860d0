#!/bin/sh
# Builds the root file system of the end-to-end test guest: Debian 13 "trixie" playing Tails 7,
# or Debian 12 "bookworm" playing Tails 6 (debootstrap, packages in ./packages and
# ./packages.SUITE), the users of Tails, an autologin session of amnesia on tty1, Tails' own
# udev rules, polkit rule and services of that release (TAILS-FACTS), and the boot unit that
# installs the build of each run from its payload disk (see e2e/vm.go). The product itself is
# not in the image: each run brings it.
# Usage: build.sh OUTDIR MIRROR SUITE TAILS   (OUTDIR gets root.img, vmlinuz, initrd.img;
# TAILS is the major version of Tails the guest plays: 7 or 6)
set -eu
out=$1 mirror=$2 suite=$3 tails=$4
case "$suite:$tails" in
trixie:7 | bookworm:6) ;;
*) echo "build.sh: Debian $suite does not play Tails $tails (trixie:7 or bookworm:6)" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
work=$out.tmp
rm -rf "$work"
mkdir -p "$work"
# The root file system is put together in memory when /dev/shm has room (3 GiB): dpkg syncs
# every file it unpacks, which on a disk takes most of the build, on tmpfs nothing.
if [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')" -gt 3145728 ] 2>/dev/null; then
  root=$(mktemp -d /dev/shm/e2e-rootfs.XXXXXX)
else
  root=$work/rootfs
fi
trap 'umount -R "$root/proc" "$root/sys" 2>/dev/null || true; rm -rf "$root"' EXIT
pkgs=$(cat "$here/packages" "$here/packages.$suite" | grep -v '^#' | tr -s ' \n' ',' | sed 's/^,//; s/,$//')
debootstrap --variant=minbase --include="$pkgs" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
  { tail -30 "$work/debootstrap.log" >&2; exit 1; }
# Then packages.apt, with apt-get from the same mirror (debootstrap wrote it into the sources),
# no recommends, no service started.
apt_pkgs=$(grep -v '^#' "$here/packages.apt" | tr -s ' \n' ' ')
if [ -n "${apt_pkgs# }" ]; then
  mount -t proc proc "$root/proc"
  mount -t sysfs sysfs "$root/sys"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 755 "$root/usr/sbin/policy-rc.d"
  # shellcheck disable=SC2086 # one word per package
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y --no-install-recommends $apt_pkgs >"$work/apt.log" 2>&1 ||
    { tail -30 "$work/apt.log" >&2; exit 1; }
  chroot "$root" apt-get clean
  rm -f "$root/usr/sbin/policy-rc.d"
  umount "$root/proc" "$root/sys"
fi

# The users of Tails: amnesia (1000) and tails-persistent-storage (115:122), which owns
# persistence.conf. The IDs must be free: the checks of Tails compare numbers.
if chroot "$root" getent passwd 115 >/dev/null || chroot "$root" getent group 122 >/dev/null; then
  echo "uid 115 or gid 122 is taken in the guest image" >&2; exit 1
fi
chroot "$root" groupadd -g 122 tails-persistent-storage
chroot "$root" useradd -r -u 115 -g 122 -d /nonexistent -M -s /usr/sbin/nologin tails-persistent-storage
chroot "$root" useradd -m -u 1000 -U -s /bin/bash amnesia
chroot "$root" passwd -d root >/dev/null
echo e2e-tails >"$root/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$root/etc/fstab"

# The desktop session of amnesia: a local, active logind session on seat0 (tty1), with its
# session bus at /run/user/1000/bus (dbus-user-session).
mkdir -p "$root/etc/systemd/system/getty@tty1.service.d"
cat >"$root/etc/systemd/system/getty@tty1.service.d/autologin.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin amnesia --noclear %I $TERM
UNIT

# What Tails does with the stick it runs from (bilibop finds it; here it is the virtio disk whose
# serial is tails-boot): a system device that udisks hides from the desktop, whose Persistent
# Storage (partition or filesystem named TailsData) is ignored. Tails 7 also makes it
# non-detachable and links it as /dev/TailsBootDev.
mkdir -p "$root/usr/lib/udev/rules.d"
{
  echo 'SUBSYSTEM!="block", GOTO="e2e_tails_boot_end"'
  echo 'ENV{ID_SERIAL}!="tails-boot", GOTO="e2e_tails_boot_end"'
  echo 'ENV{UDISKS_SYSTEM}="1"'
  if [ "$tails" = 7 ]; then
    echo 'ENV{DEVTYPE}=="disk", ENV{ID_DRIVE_DETACHABLE}="0", SYMLINK+="TailsBootDev"'
    echo 'ENV{ID_FS_LABEL}=="TailsData", ENV{UDISKS_IGNORE}="1"'
  fi
  echo 'ENV{ID_PART_ENTRY_NAME}=="TailsData", ENV{UDISKS_IGNORE}="1"'
  echo 'LABEL="e2e_tails_boot_end"'
} >"$root/usr/lib/udev/rules.d/80-e2e-tails-boot.rules"

mkdir -p "$root/etc/polkit-1/rules.d"
if [ "$tails" = 7 ]; then
  # Tails 7: a partition named TailsData on any USB or MMC stick is never auto-mounted or
  # offered by GNOME by itself.
  cat >"$root/usr/lib/udev/rules.d/80-e2e-tails-data.rules" <<'RULE'
SUBSYSTEM=="block", ENV{DEVTYPE}=="partition", ENV{ID_PART_ENTRY_NAME}=="TailsData", ENV{ID_BUS}=="usb", ENV{UDISKS_AUTO}="0"
SUBSYSTEM=="block", ENV{DEVTYPE}=="partition", ENV{ID_PART_ENTRY_NAME}=="TailsData", KERNEL=="mmcblk*", ENV{UDISKS_AUTO}="0"
RULE
  # Tails 7: when a TailsData is mounted where udisks mounts it for amnesia, a service bound to
  # that mount gives amnesia read access to its root: the backup's root ACL changes as soon as
  # it is mounted, under the update's feet.
  cat >"$root/etc/systemd/system/e2e-tails-external-tailsdata.service" <<'UNIT'
[Unit]
Description=e2e: as Tails 7, let amnesia read a TailsData mounted at /media/amnesia/TailsData
BindsTo=media-amnesia-TailsData.mount
After=media-amnesia-TailsData.mount
[Service]
Type=oneshot
ExecStart=/usr/bin/setfacl -m user:amnesia:rx /media/amnesia/TailsData
[Install]
WantedBy=media-amnesia-TailsData.mount
UNIT
  chroot "$root" systemctl enable e2e-tails-external-tailsdata.service >/dev/null 2>&1
  # Tails 7's polkit: amnesia's active local session may open devices through udisks; every
  # other udisks action keeps udisks' own defaults for an active session.
  cat >"$root/etc/polkit-1/rules.d/70-tails-amnesia.rules" <<'RULE'
polkit.addRule(function (action, subject) {
    if (action.id === "org.freedesktop.udisks2.open-device" &&
        subject.user === "amnesia" && subject.local && subject.active) {
        return polkit.Result.YES;
    }
    return polkit.Result.NOT_HANDLED;
});
RULE
  # Tails 7's udisks2.conf: every module, LUKS2 for new encrypted volumes.
  mkdir -p "$root/etc/udisks2"
  printf '[udisks2]\nmodules=*\nmodules_load_preference=ondemand\n\n[defaults]\nencryption=luks2\n' >"$root/etc/udisks2/udisks2.conf"
else
  # Tails 6's policy: the active local session of amnesia may unlock, mount and power off
  # removable drives through udisks2 without a password (TAILS-FACTS, "Users and privilege").
  cat >"$root/etc/polkit-1/rules.d/70-tails-amnesia.rules" <<'RULE'
polkit.addRule(function (action, subject) {
    if (subject.user !== "amnesia" || !subject.local || !subject.active) {
        return polkit.Result.NOT_HANDLED;
    }
    switch (action.id) {
    case "org.freedesktop.udisks2.encrypted-unlock":
    case "org.freedesktop.udisks2.filesystem-mount":
    case "org.freedesktop.udisks2.power-off-drive":
    case "org.freedesktop.udisks2.eject-media":
        return polkit.Result.YES;
    }
    return polkit.Result.NOT_HANDLED;
});
RULE
fi

# Each run's payload disk (serial e2e-payload) carries the build; e2e-guest install puts it in
# place before the session starts, then the control service serves the driver.
cat >"$root/etc/systemd/system/e2e-payload.service" <<'UNIT'
[Unit]
Description=e2e: install this run's build from the payload disk
After=systemd-udevd.service local-fs.target
Before=getty@tty1.service systemd-user-sessions.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/udevadm wait --timeout=120 /dev/disk/by-id/virtio-e2e-payload
ExecStart=/bin/mkdir -p /run/e2e/payload
ExecStart=/bin/mount -o ro /dev/disk/by-id/virtio-e2e-payload /run/e2e/payload
ExecStart=/run/e2e/payload/e2e-guest install /run/e2e/payload
[Install]
WantedBy=multi-user.target
UNIT
cat >"$root/etc/systemd/system/e2e-control.service" <<'UNIT'
[Unit]
Description=e2e: control channel of the test driver (virtio serial port e2e.ctl)
After=e2e-payload.service
Requires=e2e-payload.service
[Service]
ExecStart=/usr/local/lib/e2e/e2e-guest serve
Restart=always
RestartSec=1
[Install]
WantedBy=multi-user.target
UNIT
chroot "$root" systemctl enable e2e-payload.service e2e-control.service >/dev/null 2>&1
# Nothing in the guest needs the network or periodic jobs.
chroot "$root" systemctl mask e2scrub_all.timer e2scrub_reap.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true

cp "$(ls "$root"/boot/vmlinuz-* | tail -1)" "$work/vmlinuz"
cp "$(ls "$root"/boot/initrd.img-* | tail -1)" "$work/initrd.img"
rm -rf "$root/var/cache/apt/archives/"*.deb
mkfs.ext4 -q -F -L e2e-root -d "$root" "$work/root.img" 3G
rm -rf "$root"
mv "$work" "$out"
