//go:build linux

package helper

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	tbsync "tails-backup/sync"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/wire"
)

type nopUDisks struct{}

func (nopUDisks) GetSnapshot(context.Context) (*udisks.Snapshot, error) {
	return nil, errors.New("no udisks in this test")
}

func (nopUDisks) UnlockWithKey(context.Context, dbus.ObjectPath, []byte) (dbus.ObjectPath, error) {
	return "", errors.New("no udisks in this test")
}

func (nopUDisks) MountAs(context.Context, dbus.ObjectPath, string) (string, error) {
	return "", errors.New("no udisks in this test")
}

func (nopUDisks) Mount(context.Context, dbus.ObjectPath) (string, error) {
	return "", errors.New("no udisks in this test")
}

func (nopUDisks) Unmount(context.Context, dbus.ObjectPath) error {
	return errors.New("no udisks in this test")
}

func (nopUDisks) Lock(context.Context, dbus.ObjectPath) error {
	return errors.New("no udisks in this test")
}

func TestReadTailsVersion(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ content, want string }{
		{"6.10 - 20241203\n", "6.10"},
		{"6.10 - 20241203\nmore lines\n", "6.10"},
		{"6.11~rc1 - 20250101", "6.11~rc1"},
		{"", ""},
		{"\n", ""},
		{"6.10\x00evil - 1\n", ""},
		{strings.Repeat("9", 100) + "\n", ""},
		{"<script> - 1\n", ""},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := ReadTailsVersion(p); got != tt.want {
			t.Errorf("ReadTailsVersion(%q) = %q, want %q", tt.content, got, tt.want)
		}
	}
	if got := ReadTailsVersion(filepath.Join(dir, "missing")); got != "" {
		t.Errorf("missing file: %q", got)
	}
}

func TestPersistenceRootACLEncoding(t *testing.T) {
	want := []byte{
		2, 0, 0, 0, // version
		1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, // user::rwx
		2, 0, 1, 0, 0xe8, 3, 0, 0, // user:1000:--x
		4, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, // group::rwx
		0x10, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, // mask::rwx
		0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, // other::---
	}
	if got := tails.EncodeACL(tails.PersistenceRootACL(0)); !bytes.Equal(got, want) {
		t.Errorf("ACL\n%x\nwant\n%x", got, want)
	}
}

func TestToReportCapsErrors(t *testing.T) {
	var r tbsync.Report
	for i := range 250 {
		r.Errors = append(r.Errors, tbsync.FileError{Path: fmt.Sprint("f", i), Op: "read", Err: unix.EIO})
	}
	r.ErrorCount = 300
	got := toReport(r)
	if len(got.Errors) != MaxEventErrors || got.ErrorCount != 300 || got.Errors[0].Error != "input/output error" {
		t.Errorf("report: %d errors listed, count %d, first %+v", len(got.Errors), got.ErrorCount, got.Errors[0])
	}
}

func TestShorten(t *testing.T) {
	long := strings.Repeat("é", 300)
	got := shorten("a\nb" + long)
	if strings.ContainsAny(got, "\n") || len(got) > 210 || !strings.HasPrefix(got, "a b") || !strings.HasSuffix(got, "…") {
		t.Errorf("shorten: %q", got)
	}
}

// TestMirrorFailureCodes: the mirror's errors map to the codes the agent explains.
func TestMirrorFailureCodes(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	im := newImage(t, dir, "d", 16)
	fd := openDir(t, im.mnt)
	dst := &root{path: im.mnt, fd: fd, dev: im.dev, name: stick{Stick: wire.Stick{Label: "X"}}}
	cancelledCtx, cancel := context.WithCancelCause(context.Background())
	cancel(errCancelRequested)
	op := func(ctx context.Context) *operation {
		return &operation{ctx: ctx, sys: System{}.withDefaults()}
	}
	tests := []struct {
		name string
		ctx  context.Context
		dst  *root
		err  error
		want wire.ErrorCode
		why  wire.Reason
	}{
		{"no space", context.Background(), dst, fmt.Errorf("x: %w", &tbsync.NoSpaceError{Needed: 10, Available: 5}), wire.CodeNoSpace, wire.ReasonBackupTooSmall},
		{"no space during the copy", context.Background(), dst, fmt.Errorf("x: %w", &tbsync.NoSpaceError{Needed: 6, Available: 0, During: true}), wire.CodeNoSpace, wire.ReasonBackupFull},
		{"cancelled", cancelledCtx, dst, fmt.Errorf("mirror stopped: %w", context.Canceled), wire.CodeCancelled, wire.ReasonCancelled},
		{"EIO", context.Background(), dst, fmt.Errorf("the destination failed while writing a (%w)", unix.EIO), wire.CodeDeviceGone, wire.ReasonBackupGone},
		{"ENODEV", context.Background(), dst, &os.PathError{Op: "open", Path: "x", Err: unix.ENODEV}, wire.CodeDeviceGone, wire.ReasonBackupGone},
		{"root no longer mounted", context.Background(), &root{path: dir, fd: openDir(t, dir), dev: im.dev, name: stick{Stick: wire.Stick{Label: "X"}}}, errors.New("odd"), wire.CodeDeviceGone, wire.ReasonBackupGone},
		{"other", context.Background(), dst, errors.New("something odd"), wire.CodeInternal, wire.ReasonUpdateFailed},
	}
	for _, tt := range tests {
		f := op(tt.ctx).mirrorFailure(tt.err, tt.dst)
		if f.Code != tt.want || f.Reason != tt.why {
			t.Errorf("%s: code %s, reason %s (%s), want %s, %s", tt.name, f.Code, f.Reason, f.Message, tt.want, tt.why)
		}
		if f.Reason != wire.ReasonCancelled && (f.Args.Stick == nil || f.Args.Stick.Label != "X") {
			t.Errorf("%s: args %+v do not name the stick", tt.name, f.Args)
		}
		if tt.name == "no space" && (f.Needed != 10 || f.Available != 5) {
			t.Errorf("no space: %+v", f)
		}
		// Filled up during the copy: how much is missing is not known, and no size is said.
		if tt.name == "no space during the copy" && (f.Needed != 0 || !strings.Contains(f.Message, "ran out of space during the update")) {
			t.Errorf("no space during the copy: %+v", f)
		}
	}
}
