#!/bin/sh
# Runs as the session's user: a private system bus (GNOME Shell talks to logind when
# /run/systemd/seats exists, and dies without a system bus), the session bus, then GNOME Shell
# headless with Eval and Screenshot open (--unsafe-mode: test sessions only).
set -eu
cd "$XDG_RUNTIME_DIR"
dbus-daemon --config-file="$XDG_RUNTIME_DIR/system.conf" --nofork &
dbus-daemon --config-file="$XDG_RUNTIME_DIR/session.conf" --nofork &
i=0
until [ -S "$XDG_RUNTIME_DIR/system" ] && [ -S "$XDG_RUNTIME_DIR/bus" ]; do
  i=$((i + 1))
  [ "$i" -lt 300 ] || { echo "session.sh: the buses did not start within 30 s" >&2; exit 1; }
  sleep 0.1
done
exec gnome-shell --headless --wayland --no-x11 --virtual-monitor 1280x800 --unsafe-mode
