package session

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/internal/testtree"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
	"tails-backup/wire/wiretest"
)

const (
	runningSystemVersion = "Tails 7.2 - 20251107"
	olderSystemVersion   = "Tails 7.1 - 20251010"
)

// systemFiles is a system partition of Tails version v whose image has size bytes.
func systemFiles(v string, size int) map[string]string {
	return map[string]string{
		".disk/info":               v + "\n",
		"syslinux/syslinux.cfg":    "label live " + v,
		"live/Tails.module":        "filesystem.squashfs\n",
		"live/filesystem.squashfs": strings.Repeat("S", size),
	}
}

// systemWorld is a backup stick (udiskstest) whose system partition the fake udisks mounts
// at backupSys, a running system partition at medium, and a fake helper whose refresh-system
// makes the backup's system the running one.
type systemWorld struct {
	fake              *udiskstest.Service
	disks             *udisks.Client
	stick             Stick
	medium, backupSys string
	helper            *wiretest.FakeHelper
	sysPath           dbus.ObjectPath
}

func newSystemWorld(t *testing.T, backup map[string]string) *systemWorld {
	t.Helper()
	fake, disks, st := openWorld(t, udiskstest.StickSpec{})
	if st.System == nil {
		t.Fatal("the backup stick has no system partition")
	}
	w := &systemWorld{fake: fake, disks: disks, stick: st, medium: t.TempDir(), sysPath: st.System.Path}
	mroot := t.TempDir()
	fake.SetMountRoot(mroot)
	w.backupSys = filepath.Join(mroot, "Tails")
	if err := os.Mkdir(w.backupSys, 0o755); err != nil {
		t.Fatal(err)
	}
	testtree.Write(t, w.medium, systemFiles(runningSystemVersion, 3000), time.Time{})
	testtree.Write(t, w.backupSys, backup, time.Time{})
	w.helper = &wiretest.FakeHelper{}
	return w
}

// systemCalls lists the udisks calls on the backup's system partition.
func (w *systemWorld) systemCalls() []string {
	var out []string
	for _, c := range w.fake.Calls() {
		if c.Path == w.sysPath {
			out = append(out, c.Method)
		}
	}
	return out
}

func opsOf(reqs []wire.Request) []wire.Op {
	var out []wire.Op
	for _, r := range reqs {
		out = append(out, r.Op)
	}
	return out
}

func TestSystemRefresh(t *testing.T) {
	older := systemFiles(olderSystemVersion, 2000)
	refreshed := &wire.Report{Updated: 3, SystemVersion: runningSystemVersion, BootloaderChanged: true}
	he := func(code wire.ErrorCode, msg string) error { return &wire.HelperError{Code: code, Message: msg} }
	refusal := "Another file system is mounted on \"EFI/BOOT\" in the system partition of the backup; unplug the stick, plug it in again and try again."
	for _, tc := range []struct {
		name    string
		backup  map[string]string // the backup's system partition (older if nil)
		medium  string            // the running system partition ("" the world's)
		setup   func(t *testing.T, w *systemWorld)
		report  *wire.Report // of refresh-system (refreshed if nil)
		refresh error        // of refresh-system
		boot    error        // of install-bootloader
		cancel  bool         // the caller's context ends during refresh-system

		version string
		kind    SystemFailure // when failed
		failed  bool
		message string // the helper's message kept in the error
		ops     []wire.Op
		calls   []string // udisks calls on the system partition
	}{
		{name: "boot files changed", version: runningSystemVersion,
			ops: []wire.Op{wire.OpRefreshSystem, wire.OpInstallBootloader}, calls: []string{"Mount", "Unmount"}},
		{name: "boot files unchanged", report: &wire.Report{SystemVersion: runningSystemVersion}, version: runningSystemVersion,
			ops: []wire.Op{wire.OpRefreshSystem}, calls: []string{"Mount", "Unmount"}},
		{name: "up to date", backup: systemFiles(runningSystemVersion, 3000), calls: []string{"Mount", "Unmount"}},
		{name: "an empty system partition is filled", backup: map[string]string{}, version: runningSystemVersion,
			ops: []wire.Op{wire.OpRefreshSystem, wire.OpInstallBootloader}, calls: []string{"Mount", "Unmount"}},
		{name: "the running system cannot be read", medium: "nowhere"},
		{name: "no Tails system partition", setup: func(t *testing.T, w *systemWorld) {
			w.fake.Set(w.sysPath, "org.freedesktop.UDisks2.Partition", "Name", "EFI")
		}},
		{name: "the system partition cannot be mounted", setup: func(t *testing.T, w *systemWorld) {
			w.fake.OnCall("Mount", func(c udiskstest.Call) *dbus.Error {
				if c.Path == w.sysPath {
					return udiskstest.Failed("bad superblock")
				}
				return nil
			})
		}, failed: true, kind: SystemUnreadable, calls: []string{"Mount"}},
		{name: "no space", refresh: &wire.HelperError{Code: wire.CodeNoSpace, Message: "The backup is too small.", Needed: 2, Available: 1},
			failed: true, kind: SystemNoSpace, message: "The backup is too small.", ops: []wire.Op{wire.OpRefreshSystem}, calls: []string{"Mount", "Unmount"}},
		{name: "unplugged", refresh: he(wire.CodeDeviceGone, "gone"),
			failed: true, kind: SystemGone, ops: []wire.Op{wire.OpRefreshSystem}, calls: []string{"Mount", "Unmount"}},
		{name: "not found", refresh: he(wire.CodeNotFound, "The backup's system partition is not mounted."),
			failed: true, kind: SystemUnreadable, ops: []wire.Op{wire.OpRefreshSystem}, calls: []string{"Mount", "Unmount"}},
		{name: "refused", refresh: &wire.HelperError{Code: wire.CodeRefused, Reason: wire.ReasonBackupSystemNestedMount, Message: refusal,
			Args: wire.Args{Stick: &wire.Stick{Label: "SanDisk Cruzer"}, Path: "EFI/BOOT"}},
			failed: true, kind: SystemRefused, message: refusal, ops: []wire.Op{wire.OpRefreshSystem}, calls: []string{"Mount", "Unmount"}},
		// A reason this session has no sentence for: not said as the helper's refusal.
		{name: "refused for an unknown reason", refresh: he(wire.CodeRefused, refusal),
			failed: true, kind: SystemStopped, ops: []wire.Op{wire.OpRefreshSystem}, calls: []string{"Mount", "Unmount"}},
		{name: "the helper crashed", refresh: &wire.HelperCrashError{ExitCode: -1, Signal: "killed"},
			failed: true, kind: SystemStopped, ops: []wire.Op{wire.OpRefreshSystem}, calls: []string{"Mount", "Unmount"}},
		{name: "cancelled", cancel: true,
			failed: true, kind: SystemCancelled, ops: []wire.Op{wire.OpRefreshSystem}, calls: []string{"Mount", "Unmount"}},
		{name: "the boot loader failed", boot: he(wire.CodeInternal, "syslinux failed"), version: runningSystemVersion,
			failed: true, kind: SystemBootloader, ops: []wire.Op{wire.OpRefreshSystem, wire.OpInstallBootloader}, calls: []string{"Mount", "Unmount"}},
		{name: "the boot loader refused", boot: he(wire.CodeRefused, "Partition 1 is mounted."), version: runningSystemVersion,
			failed: true, kind: SystemBootloader, ops: []wire.Op{wire.OpRefreshSystem, wire.OpInstallBootloader}, calls: []string{"Mount", "Unmount"}},
		{name: "the stick left before the boot loader", boot: he(wire.CodeDeviceGone, "gone"), version: runningSystemVersion,
			failed: true, kind: SystemGone, ops: []wire.Op{wire.OpRefreshSystem, wire.OpInstallBootloader}, calls: []string{"Mount", "Unmount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backup := tc.backup
			if backup == nil {
				backup = older
			}
			w := newSystemWorld(t, backup)
			if tc.setup != nil {
				tc.setup(t, w)
			}
			medium := w.medium
			if tc.medium != "" {
				medium = filepath.Join(w.medium, tc.medium)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			report := tc.report
			if report == nil {
				report = refreshed
			}
			w.helper.Progress = []wire.Event{{Phase: "scan"}, {Phase: wire.PhaseSystem, BytesDone: 250, BytesTotal: 1000, FilesDone: 1, FilesTotal: 4}}
			w.helper.Func = func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				switch req.Op {
				case wire.OpRefreshSystem:
					if tc.cancel {
						cancel(ErrCancelled)
						<-ctx.Done()
						return nil, &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}
					}
					if tc.refresh != nil {
						return nil, tc.refresh
					}
					rep := *report
					return &rep, nil
				case wire.OpInstallBootloader:
					if mps, _ := w.fake.Get(w.sysPath, udisks.IfaceFilesystem, "MountPoints").([][]byte); len(mps) > 0 {
						t.Error("install-bootloader with the system partition mounted")
					}
					if tc.boot != nil {
						return nil, tc.boot
					}
					return &wire.Report{Bootloader: wire.BootloaderSyslinux}, nil
				}
				t.Errorf("unexpected request %+v", req)
				return nil, errors.New("unexpected")
			}
			log := logrus.NewEntry(logrus.New())
			log.Logger.SetLevel(logrus.PanicLevel)
			now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
			pending := &PendingBootloaders{}
			r := &SystemRefresh{Disks: w.disks, Helper: w.helper, Medium: medium, Pending: pending, Now: func() time.Time { return now }, Log: log}
			obs := &fakeObserver{}

			version, err := r.Run(ctx, w.stick, obs)
			if version != tc.version {
				t.Errorf("version %q, want %q", version, tc.version)
			}
			var se *SystemError
			switch {
			case tc.failed && !errors.As(err, &se):
				t.Fatalf("Run: %v, want a *SystemError", err)
			case tc.failed && se.Kind != tc.kind:
				t.Errorf("failure %d (%v), want %d", se.Kind, err, tc.kind)
			case tc.failed && tc.message != "" && (se.Helper == nil || se.Helper.Message != tc.message):
				t.Errorf("helper error %+v, want the message %q", se.Helper, tc.message)
			case !tc.failed && err != nil:
				t.Errorf("Run: %v", err)
			}
			if got := opsOf(w.helper.Requests()); !slices.Equal(got, tc.ops) {
				t.Errorf("helper requests %v, want %v", got, tc.ops)
			}
			for _, req := range w.helper.Requests() {
				if req.Backup != backupUUID {
					t.Errorf("request %+v for another backup", req)
				}
			}
			if got := w.systemCalls(); !slices.Equal(got, tc.calls) {
				t.Errorf("udisks calls on the system partition %q, want %q", got, tc.calls)
			}
			if slices.Contains(tc.ops, wire.OpRefreshSystem) {
				from := olderSystemVersion
				if len(backup) == 0 {
					from = ""
				}
				if want := []string{from + ">" + runningSystemVersion}; !slices.Equal(obs.refreshing, want) {
					t.Errorf("RefreshingSystem %q, want %q", obs.refreshing, want)
				}
				if len(obs.system) != 1 || obs.system[0].Percent != 25 {
					t.Errorf("system progress %+v, want one event at 25%%", obs.system)
				}
			} else if len(obs.refreshing) != 0 {
				t.Errorf("RefreshingSystem %q without a refresh", obs.refreshing)
			}
			wantPending := tc.failed && slices.Contains(tc.ops, wire.OpInstallBootloader)
			if pending.Pending(backupUUID) != wantPending {
				t.Errorf("boot loader pending %v, want %v", pending.Pending(backupUUID), wantPending)
			}
		})
	}
}

// TestSystemRefreshPendingBootloader: the boot loader failed after a refresh; at the next run
// the systems are equal, but the boot loader is installed again, once.
func TestSystemRefreshPendingBootloader(t *testing.T) {
	w := newSystemWorld(t, systemFiles(runningSystemVersion, 3000))
	pending := &PendingBootloaders{}
	r := &SystemRefresh{Disks: w.disks, Helper: w.helper, Medium: w.medium, Pending: pending}
	w.helper.Report = &wire.Report{Bootloader: wire.BootloaderNoSyslinux}
	ctx := context.Background()
	if v, err := r.Run(ctx, w.stick, &fakeObserver{}); v != "" || err != nil || len(w.helper.Requests()) != 0 {
		t.Fatalf("up to date: %q, %v, requests %+v", v, err, w.helper.Requests())
	}
	pending.set(backupUUID, true)
	for range 2 {
		if v, err := r.Run(ctx, w.stick, &fakeObserver{}); v != "" || err != nil {
			t.Errorf("Run: %q, %v", v, err)
		}
	}
	if got := opsOf(w.helper.Requests()); !slices.Equal(got, []wire.Op{wire.OpInstallBootloader}) {
		t.Errorf("helper requests %v, want one install-bootloader", got)
	}
	if pending.Pending(backupUUID) {
		t.Error("still pending after the boot loader was installed")
	}
}
