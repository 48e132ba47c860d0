package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Where the test programs live in the guest.
const (
	libDir      = "/usr/local/lib/e2e"
	pinentryDir = "/run/e2e/pinentry" // answers (written by the driver), counter and log
)

// The pinentry of the session: the project's scripted fake pinentry, reading the answers of
// the current scenario from a file the driver writes (FAKEPIN_ANSWERS would be fixed for the
// agent's lifetime).
const pinentryWrapper = `#!/bin/sh
FAKEPIN_ANSWERS=$(cat ` + pinentryDir + `/answers) \
FAKEPIN_COUNTER=` + pinentryDir + `/counter \
FAKEPIN_LOG=` + pinentryDir + `/log \
exec ` + libDir + `/fakepinentry "$@"
`

// The notification server of the desktop session (GNOME Shell's part).
const notifydUnit = `[Unit]
Description=e2e: notification server of the desktop session (records, clicks)
[Service]
ExecStart=` + libDir + `/e2e-guest notifyd
Restart=always
RestartSec=1
[Install]
WantedBy=default.target
`

// The session's environment (the user manager reads environment.d): the pinentry.
const sessionEnv = "PINENTRY_PROGRAM=" + libDir + "/pinentry\n"

// The agent's unit as installed, with debug logs.
const agentDropIn = `[Service]
ExecStart=
ExecStart=/usr/bin/tails-backup agent --verbose
`

// install puts this run's build in place: the Debian package tails-backup (as a Tails user's
// Additional Software installs it, with dpkg; its dependencies are in the image), the test
// programs, the pinentry and the notification server. Tails' own udev rules and services are
// part of the image (e2e/image/build.sh).
func install(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: e2e-guest install PAYLOAD_DIR")
	}
	payload := args[0]
	debs, err := filepath.Glob(filepath.Join(payload, "tails-backup_*.deb"))
	if err != nil || len(debs) != 1 {
		return fmt.Errorf("the payload has %d packages tails-backup_*.deb, want 1", len(debs))
	}
	if err := runCmd(ctx, nil, "dpkg", "-i", debs[0]); err != nil {
		return err
	}
	if err := os.MkdirAll(libDir, 0o755); err != nil {
		return err
	}
	for _, p := range []string{"e2e-guest", "fakepinentry"} {
		if err := runCmd(ctx, nil, "install", "-m", "0755", filepath.Join(payload, p), filepath.Join(libDir, p)); err != nil {
			return err
		}
	}
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{libDir + "/pinentry", 0o755, pinentryWrapper},
		{"/etc/systemd/user/e2e-notifyd.service", 0o644, notifydUnit},
		{"/etc/systemd/user/tails-backup-agent.service.d/e2e.conf", 0o644, agentDropIn},
		{"/etc/environment.d/50-e2e-pinentry.conf", 0o644, sessionEnv},
	}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(f.path, []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	if err := os.MkdirAll("/etc/systemd/user/default.target.wants", 0o755); err != nil {
		return err
	}
	link := "/etc/systemd/user/default.target.wants/e2e-notifyd.service"
	os.Remove(link)
	if err := os.Symlink("../e2e-notifyd.service", link); err != nil {
		return err
	}
	// sudo looks the host name up.
	if err := os.WriteFile("/etc/hosts", []byte("127.0.0.1 localhost\n127.0.1.1 e2e-tails\n"), 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(pinentryDir, 0o755); err != nil {
		return err
	}
	if err := os.Chown(pinentryDir, 1000, 1000); err != nil {
		return err
	}
	if err := os.WriteFile(pinentryDir+"/answers", []byte(`["!cancel"]`), 0o644); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, "udevadm", "control", "--reload"); err != nil {
		return err
	}
	if err := runCmd(ctx, nil, "udevadm", "trigger", "--subsystem-match=block", "--settle"); err != nil {
		return err
	}
	return runCmd(ctx, nil, "systemctl", "daemon-reload")
}

// runCmd runs a command, with stdin if not nil, and returns its error with its output.
func runCmd(ctx context.Context, stdin []byte, name string, args ...string) error {
	_, err := output(ctx, stdin, name, args...)
	return err
}

// output runs a command and returns its standard output.
func output(ctx context.Context, stdin []byte, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytesReader(stdin)
	}
	var stderr limitedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s %v: %w: %s", name, args, err, stderr.String())
	}
	return string(out), nil
}
