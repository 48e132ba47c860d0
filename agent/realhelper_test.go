//go:build linux

package agent

// The end-to-end test of issue 4: the agent on private system and session buses (fake udisks2,
// fake notification server, fake login1, fake pinentry program, fake clock) driving the REAL
// root helper code (helper.Run, in this process) running the REAL mirror between two REAL
// ext4 file systems in loop-mounted images. It needs root; it skips otherwise.
//
// The fake udisks2's Block objects of the two cleartext devices carry the real loop devices'
// numbers and the real mount points, so that the helper's checks against the mount table and
// udisks run for real. The fake's own Mount, Unmount, Lock and PowerOff only change its model:
// the images stay mounted until the test ends.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"tails-backup/internal/logtest"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/clock/clocktest"
	"tails-backup/helper"
	"tails-backup/inhibit"
	"tails-backup/inhibit/inhibittest"
	"tails-backup/l10n"
	"tails-backup/notify"
	"tails-backup/notify/notifytest"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/quiesce/quiescetest"
	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// e2eWait bounds every wait of these tests: real copies on a busy two-core machine.
const e2eWait = 3 * time.Minute

// inProcessWriteTimeout bounds a write to the in-process helper's standard input, as
// HelperClient bounds one to the helper's.
const inProcessWriteTimeout = 5 * time.Second

// ---- the in-process helper ----

// inProcessHelper is a HelperRunner running the real root helper, helper.Run, in this process.
// It speaks to it through pipes exactly as HelperClient speaks to the helper process: the
// request line on its standard input, which stays open; to cancel, a {"op":"cancel"} line and
// then the end of standard input; its standard output read and checked by wire.ReadEvents,
// the client's own reader (hence os.Pipe rather than io.Pipe: it reads an *os.File). What
// differs: the SIGTERM of the client's escalation is the end of helper.Run's context, there is
// no SIGKILL, and a done event without a report is accepted for operations other than update
// (HelperClient refuses it: see TestRealHelperDoneWithoutReport).
type inProcessHelper struct {
	sys helper.System
	log *logrus.Entry
	// clock, if set, is advanced by tick at every copy progress event, before the agent sees
	// it: the time the copy takes, for the agent's progress throttle and its estimate.
	clock *clocktest.FakeClock
	tick  time.Duration
	// copying receives (without blocking) each copy progress event with data copied, once the
	// agent has handled it.
	copying chan wire.Event

	mu   sync.Mutex
	runs []helperRun
}

// helperRun is one operation: what was asked, what the agent got and what helper.Run said.
type helperRun struct {
	Req        wire.Request
	Report     *wire.Report
	Err        error
	RunErr     error // helper.Run's result
	CancelSent bool  // a cancel line was written
	Progress   int   // progress events
	NoReport   bool  // a done event without a report (accepted for operations other than update)
	Final      *wire.Event
	Problems   []string
}

func newInProcessHelper(sys helper.System, log *logrus.Entry, clock *clocktest.FakeClock) *inProcessHelper {
	return &inProcessHelper{sys: sys, log: log, clock: clock, tick: time.Second, copying: make(chan wire.Event, 1)}
}

// Runs returns the operations run so far.
func (h *inProcessHelper) Runs() []helperRun {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.runs)
}

// Run implements HelperRunner.
func (h *inProcessHelper) Run(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
	run := helperRun{Req: req}
	rep, err := h.run(ctx, req, progress, &run)
	run.Report, run.Err = rep, err
	h.mu.Lock()
	h.runs = append(h.runs, run)
	h.mu.Unlock()
	return rep, err
}

func (h *inProcessHelper) run(ctx context.Context, req wire.Request, progress func(wire.Event), run *helperRun) (*wire.Report, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("run the helper: %w", err)
	}
	reqLine, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("run the helper: encode the request: %w", err)
	}
	if _, err := wire.ParseRequest(reqLine); err != nil {
		return nil, fmt.Errorf("run the helper: %w", err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	defer inR.Close() // after inW: the helper's input watcher has seen the end of its input
	defer inW.Close()
	defer outR.Close()

	// The helper "process": its context ends only at the SIGTERM of the escalation.
	hctx, term := context.WithCancel(context.Background())
	defer term()
	exited := make(chan error, 1)
	go func() {
		err := helper.Run(hctx, inR, outW, h.sys, h.log)
		outW.Close() // as the exit of the process would
		exited <- err
	}()

	write := func(b []byte) error {
		_ = inW.SetWriteDeadline(time.Now().Add(inProcessWriteTimeout))
		_, err := inW.Write(append(b, '\n'))
		return err
	}
	if err := write(reqLine); err != nil {
		h.log.WithError(err).Warn("could not send the request to the in-process helper")
	}

	quit := make(chan struct{})
	defer close(quit)
	lines := make(chan wire.EventLine)
	go wire.ReadEvents(outR, lines, quit)

	var (
		final               *wire.Event
		protoErr, exitErr   error
		cancelled, stopping bool
		linesDone, exitDone bool
		escalate            <-chan time.Time
	)
	ctxDone := ctx.Done()
	stop := func(sendCancel bool) {
		if stopping {
			return
		}
		stopping = true
		if sendCancel {
			cl, _ := json.Marshal(wire.Request{Version: wire.ProtocolVersion, Op: wire.OpCancel})
			if err := write(cl); err != nil {
				h.log.WithError(err).Debug("could not send cancel to the in-process helper")
			} else {
				run.CancelSent = true
			}
		}
		inW.Close()
		escalate = time.After(30 * time.Second)
	}
	for !linesDone || !exitDone {
		select {
		case l, ok := <-lines:
			if !ok {
				linesDone, lines = true, nil
				stop(final == nil)
				continue
			}
			if l.Err != nil {
				protoErr = l.Err
				run.Problems = append(run.Problems, "protocol error: "+l.Err.Error())
				stop(true)
				continue
			}
			switch {
			case final != nil:
				run.Problems = append(run.Problems, fmt.Sprintf("event after the final event: %+v", l.Event))
			case l.Event.Event == wire.EventProgress:
				run.Progress++
				if h.clock != nil && l.Event.Phase == "copy" {
					h.clock.Advance(h.tick)
				}
				if progress != nil {
					progress(l.Event)
				}
				if l.Event.Phase == "copy" && l.Event.BytesDone > 0 {
					select {
					case h.copying <- l.Event:
					default:
					}
				}
			default:
				ev := l.Event
				final = &ev
				stop(false)
			}
		case exitErr = <-exited:
			exitDone, exited = true, nil
			escalate = nil
		case <-ctxDone:
			ctxDone, cancelled = nil, true
			stop(true)
		case <-escalate:
			escalate = nil
			run.Problems = append(run.Problems, "the helper did not stop within 30 s of the end of its input")
			term()
		}
	}
	run.RunErr, run.Final = exitErr, final

	// helper.Run's result must agree with its final event.
	var failure *helper.Failure
	switch {
	case final == nil:
		run.Problems = append(run.Problems, fmt.Sprintf("no final event (helper.Run returned %v)", exitErr))
	case final.Event == wire.EventDone && exitErr != nil:
		run.Problems = append(run.Problems, fmt.Sprintf("done event but helper.Run returned %v", exitErr))
	case final.Event == wire.EventError && (!errors.As(exitErr, &failure) || failure.Code != final.Code || failure.Message != final.Message):
		run.Problems = append(run.Problems, fmt.Sprintf("error event %+v but helper.Run returned %#v", final, exitErr))
	}

	withCtx := func(err error) error {
		if cancelled {
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return err
	}
	switch {
	case final != nil && final.Event == wire.EventDone:
		if final.Report == nil {
			if req.Op != wire.OpUpdate {
				// HelperClient refuses this (ErrHelperProtocol) whatever the operation, but the
				// helper sends no report after mark, promote and create-persistence: see
				// TestRealHelperDoneWithoutReport. Accepted here so that pairing can run.
				run.NoReport = true
				return &wire.Report{}, nil
			}
			return nil, withCtx(fmt.Errorf("%w: done without a report", wire.ErrHelperProtocol))
		}
		return final.Report, nil
	case final != nil:
		herr := &wire.HelperError{Code: final.Code, Reason: final.Reason, Message: final.Message, Needed: final.Needed, Available: final.Available}
		if final.Args != nil {
			herr.Args = *final.Args
		}
		return nil, withCtx(herr)
	case protoErr != nil:
		return nil, withCtx(fmt.Errorf("%w (helper.Run returned %v)", protoErr, exitErr))
	}
	return nil, withCtx(&wire.HelperCrashError{ExitCode: -1, Stderr: []string{fmt.Sprint(exitErr)}})
}

var _ wire.HelperRunner = (*inProcessHelper)(nil)

// ---- real file systems ----

// requireRealWorld skips (or fails on CI, for a missing program) unless the test can build
// and mount ext4 images.
func requireRealWorld(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		udiskstest.SkipOrFail(t, false, "needs root (loop devices, mount, chown): the end-to-end test of the agent with the real helper is skipped")
	}
	for _, p := range []string{"mkfs.ext4", "losetup", "mount", "umount", "rsync", "setfacl", "dbus-daemon"} {
		if _, err := exec.LookPath(p); err != nil {
			udiskstest.SkipOrFail(t, true, "%s not found: %v", p, err)
		}
	}
}

func runCmd(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// loopImage is an ext4 file system in a sparse file, attached to a loop device and mounted
// with ACLs and user xattrs.
type loopImage struct {
	file, mnt, loop string
	dev             uint64
}

// newLoopImage makes the image and mounts it at mnt; the cleanups unmount it and detach it,
// whatever happened.
func newLoopImage(t *testing.T, file, mnt string, sizeMiB int64) *loopImage {
	t.Helper()
	im := &loopImage{file: file, mnt: mnt}
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	runCmd(t, "mkfs.ext4", "-q", "-F", "-L", tails.PersistenceName, "-E", "lazy_itable_init=0,lazy_journal_init=0", file)
	im.loop = strings.TrimSpace(runCmd(t, "losetup", "--find", "--show", file))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", im.loop).CombinedOutput(); err != nil {
			t.Logf("losetup -d %s: %v %s", im.loop, err, out)
		}
	})
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	runCmd(t, "mount", "-t", "ext4", "-o", "acl,user_xattr", im.loop, mnt)
	t.Cleanup(func() {
		if err := exec.Command("umount", mnt).Run(); err != nil {
			// Busy (a test failed mid-way): detach lazily so that the loop device is freed.
			if out, err := exec.Command("umount", "-l", mnt).CombinedOutput(); err != nil {
				t.Logf("umount -l %s: %v %s", mnt, err, out)
			}
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if unix.Major(st.Dev) != 7 {
		t.Fatalf("%s is on device %d:%d, not a loop device", mnt, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	im.dev = st.Dev
	return im
}

// fillSample writes a small Persistent Storage: the root as Tails makes it (root:root 0770,
// ACL user:amnesia:--x), persistence.conf 0600 tails-persistence-setup, feature folders of
// amnesia (and one of root), with a hard link, symlinks, an xattr, access and default ACLs, a
// sparse file, an old mtime, and Thunderbird's folder.
func fillSample(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o700))
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode))
	}
	must(os.Chown(root, 0, 0))
	must(os.Chmod(root, tails.PersistenceRootMode))
	runCmd(t, "setfacl", "-m", fmt.Sprintf("u:%d:x", tails.AmnesiaUID), root)
	must(os.Chmod(root, tails.PersistenceRootMode))

	write(tails.PersistenceConfName, []byte("/home/amnesia/Persistent\tsource=Persistent\n"+
		"/home/amnesia/.thunderbird\tsource=thunderbird\n"+
		"/home/amnesia\tsource=dotfiles,link\n"+
		"/etc/NetworkManager/system-connections\tsource=nm-system-connections\n"), tails.PersistenceConfMode)
	must(os.Chown(filepath.Join(root, tails.PersistenceConfName), tails.PersistentStorageUID, tails.PersistentStorageGID))

	write("Persistent/notes.txt", []byte("remember the milk\n"), 0o600)
	must(os.Link(filepath.Join(root, "Persistent/notes.txt"), filepath.Join(root, "Persistent/notes-link.txt")))
	must(unix.Setxattr(filepath.Join(root, "Persistent/notes.txt"), "user.tag", []byte("important"), 0))
	write("Persistent/Documents/report.odt", randomBytes(200<<10, 1), 0o644)
	write("Persistent/Documents/old.txt", []byte("to be deleted\n"), 0o644)
	write("Persistent/Documents/keep.txt", []byte("kept\n"), 0o644)
	runCmd(t, "setfacl", "-m", "u:1001:r", filepath.Join(root, "Persistent/Documents/report.odt"))
	must(os.MkdirAll(filepath.Join(root, "Persistent/Shared"), 0o750))
	runCmd(t, "setfacl", "-d", "-m", "u:1001:rx", filepath.Join(root, "Persistent/Shared"))
	write("Persistent/Shared/readme", []byte("shared\n"), 0o640)
	must(os.Symlink("Documents/report.odt", filepath.Join(root, "Persistent/latest-report")))
	must(os.Symlink("/nonexistent/target", filepath.Join(root, "Persistent/dangling")))
	sparse := filepath.Join(root, "Persistent/disk.img")
	f, err := os.Create(sparse)
	must(err)
	must(f.Truncate(8 << 20))
	_, err = f.WriteAt([]byte("data in the middle"), 4<<20)
	must(err)
	must(f.Close())
	old := time.Date(2019, 5, 1, 12, 0, 0, 123456789, time.UTC)
	must(os.Chtimes(filepath.Join(root, "Persistent/Documents/keep.txt"), old, old))

	write("dotfiles/.bashrc", []byte("export EDITOR=vi\n"), 0o644)
	must(os.Symlink("/home/amnesia/Persistent/notes.txt", filepath.Join(root, "dotfiles/.notes")))

	write("thunderbird/profile.default/prefs.js", []byte("user_pref(\"mail.check\", true);\n"), 0o600)
	write("thunderbird/profile.default/Mail/Inbox", randomBytes(300<<10, 2), 0o600)

	for _, d := range []string{"Persistent", "dotfiles", "thunderbird"} {
		must(filepath.WalkDir(filepath.Join(root, d), func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, tails.AmnesiaUID, tails.AmnesiaUID)
		}))
	}
	must(os.Chmod(filepath.Join(root, "Persistent"), 0o700))
	must(os.Chmod(filepath.Join(root, "thunderbird"), 0o700))
	write("nm-system-connections/home.nmconnection", []byte("[wifi]\nssid=home\n"), 0o600)
}

// fillBulk adds dirs×files files of size bytes of pseudo-random data under Persistent/bulk.
func fillBulk(t *testing.T, root string, dirs, files, size int) {
	t.Helper()
	for d := range dirs {
		dir := filepath.Join(root, "Persistent", "bulk", fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		for f := range files {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%04d", f)), randomBytes(size, uint64(d*files+f+100)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), 42})
	_, _ = r.Read(b)
	return b
}

// rsyncDiff is what rsync finds different between the source and the backup, with checksums,
// ACLs, xattrs, hard links and sparse files; "" when the backup is an exact copy. The marker
// is the helper's own; tails-backup/ holds the agent's state, which it rewrites after every
// update; tails-backup-cache/ is the helper's xattr cache on the backup. excludes adds paths to leave out.
func rsyncDiff(t *testing.T, src, dst string, excludes ...string) string {
	t.Helper()
	args := []string{"-aHAXS", "--numeric-ids", "--delete", "-n", "-i", "--checksum",
		"--exclude=/" + tails.MarkerName, "--exclude=/" + tails.StateDirName, "--exclude=/" + tails.XattrCacheDirName}
	for _, e := range excludes {
		args = append(args, "--exclude="+e)
	}
	out, err := exec.Command("rsync", append(args, src+"/", dst+"/")...).CombinedOutput()
	if err != nil {
		t.Fatalf("rsync: %v\n%s", err, out)
	}
	return string(out)
}

// tempFiles lists the temporary files of the mirror (.tails-backup-*.tmp) and of atomic
// writes (.NAME.tmp-*) left under root.
// resumableRe is the name of the temporary of a large file's copy that a cancelled update keeps
// for the next one to resume (sync/resume.go partialName).
var resumableRe = regexp.MustCompile(`^\.tails-backup-part-[0-9a-f]{32}\.tmp$`)

func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		n := d.Name()
		if (strings.HasPrefix(n, ".tails-backup-") && strings.HasSuffix(n, ".tmp")) || (strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-")) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func readMarkerAt(t *testing.T, root string) tails.Marker {
	t.Helper()
	m, err := readMarkerFile(root)
	if err != nil {
		t.Fatalf("the marker of %s: %v", root, err)
	}
	return m
}

// treeListing describes every entry under dir (type, mode, owner, size, mtime, content), so
// that any change of data or metadata shows.
func treeListing(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s mode=%o uid=%d gid=%d size=%d mtime=%d.%09d", rel, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" data=%q", b[:min(len(b), 64)])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// ---- the world ----

// realWorld is the agent on private buses with fakes around it and the real helper behind it.
type realWorld struct {
	t        *testing.T
	dir      string
	src, dst *loopImage
	boot     udisks.BootPaths
	udisks   *udiskstest.Service
	notes    *notifytest.Server
	login1   *inhibittest.Login1
	quiescer *quiescetest.FakeQuiescer
	asker    pinentry.PassphraseAsker
	clock    *clocktest.FakeClock
	store    *pairing.Store
	helper   *inProcessHelper
	agent    *Agent
	logs     *logtest.Buffer
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan error
	stopped  bool
}

type realWorldOpts struct {
	srcMiB, dstMiB int64
	// fill writes the source before the backup is paired; fillSample if nil.
	fill func(t *testing.T, root string)
	// asker asks the passphrase; a FakeAsker typing the right one when nil.
	asker pinentry.PassphraseAsker
	// quiescer; one with nothing running when nil.
	quiescer *quiescetest.FakeQuiescer
	// session is the address of the session bus the agent's notifications go to (the GNOME
	// session's, whose shell shows them); "" for a private one with a fake notification server
	// (notes).
	session string
	// unpaired leaves this Tails without a backup (its first run): the destination image stays
	// empty, for a creation, whose Persistent Storage it becomes once unlocked and mounted.
	unpaired bool
}

func newRealWorld(t *testing.T, o realWorldOpts) *realWorld {
	t.Helper()
	requireRealWorld(t)
	if o.srcMiB == 0 {
		o.srcMiB = 64
	}
	if o.dstMiB == 0 {
		o.dstMiB = 64
	}
	if o.fill == nil {
		o.fill = fillSample
	}
	if o.asker == nil {
		o.asker = &pinentrytest.FakeAsker{Answers: slices.Repeat([]pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}}, 5)}
	}
	if o.quiescer == nil {
		o.quiescer = &quiescetest.FakeQuiescer{}
	}
	// Short: mount points show in messages and logs.
	dir, err := os.MkdirTemp("", "agent-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // after the unmounts (cleanups run in reverse)
	w := &realWorld{t: t, dir: dir, clock: clocktest.NewFakeClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)),
		asker: o.asker, quiescer: o.quiescer, done: make(chan error, 1)}
	// The backup is mounted where the fake udisks2's Mount says it mounts a file system
	// labelled TailsData: MOUNTROOT/TailsData.
	w.src = newLoopImage(t, filepath.Join(dir, "src.img"), filepath.Join(dir, "src"), o.srcMiB)
	w.dst = newLoopImage(t, filepath.Join(dir, "dst.img"), filepath.Join(dir, "media", tails.PersistenceName), o.dstMiB)
	w.boot = udisks.BootPaths{Persistence: w.src.mnt, System: filepath.Join(dir, "no-medium")}
	o.fill(t, w.src.mnt)

	sysAddr := udiskstest.StartBus(t)
	w.udisks = udiskstest.NewService(t, sysAddr)
	w.udisks.SetMountRoot(filepath.Join(dir, "media"))
	boot := w.udisks.AddStick(udiskstest.StickSpec{Name: "sda", Vendor: "SanDisk", Model: "Cruzer", Serial: "BOOT0001",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BootPassphrase, HintSystem: true,
		LUKSUUID: bootUUID, MountedAt: w.src.mnt})
	w.setDevice(boot.Cleartext, w.src)
	w.udisks.AddStick(udiskstest.StickSpec{Name: "vda", Model: "Virtual disk", Serial: "internal0", Size: 256 << 30})
	// Whenever the backup's cleartext device is mounted, it is the real destination image.
	w.udisks.OnCall("Mount", func(c udiskstest.Call) *dbus.Error {
		back, _ := w.udisks.Get(c.Path, udisks.IfaceBlock, "CryptoBackingDevice").(dbus.ObjectPath)
		if back == "" || back == "/" {
			return nil
		}
		if uuid, _ := w.udisks.Get(back, udisks.IfaceBlock, "IdUUID").(string); uuid == backupUUID || (o.unpaired && uuid != bootUUID) {
			w.setDevice(c.Path, w.dst)
		}
		return nil
	})
	w.login1 = &inhibittest.Login1{}
	w.login1.Serve(t, sysAddr)

	sessAddr := o.session
	if sessAddr == "" {
		sess := notifytest.StartBus(t)
		w.notes = notifytest.NewServer(t, sess.Address())
		sessAddr = sess.Address()
	}

	log, logs := logtest.New(t)
	w.logs = logs

	version := filepath.Join(dir, "version")
	if err := os.WriteFile(version, []byte("6.10 - 20241203\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	helperConn := w.connect(sysAddr)
	w.helper = newInProcessHelper(helper.System{
		UDisks:      udisks.New(helperConn, udisks.Options{Log: log.WithField("side", "helper-udisks")}),
		Source:      w.src.mnt,
		SystemMount: w.boot.System,
		VersionFile: version,
		Now:         w.clock.Now,
		// Early copy events: the cancel test clicks Cancel on the first one.
		ProgressInterval: 50 * time.Millisecond,
	}, log.WithField("side", "helper"), w.clock)

	stateDir := filepath.Join(w.src.mnt, tails.StateDirName)
	w.store = pairing.NewStore(filepath.Join(stateDir, "state.json"), w.clock.Now, log)
	if !o.unpaired {
		w.pair(stateDir)
	}
	agentConn := w.connect(sysAddr)
	w.ctx, w.cancel = context.WithCancel(context.Background())
	t.Cleanup(w.cancel)
	notifier, err := notify.New(w.ctx, notify.Config{Address: sessAddr, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notifier.Close() })
	w.agent = New(Config{QuiesceGrace: time.Second}, Deps{
		Disks:     udisks.New(agentConn, udisks.Options{Log: log, Boot: w.boot}),
		Notifier:  notifier,
		Asker:     w.asker,
		Quiescer:  w.quiescer,
		Inhibitor: inhibit.NewLogindInhibitor(agentConn, log),
		Helper:    w.helper,
		Store:     w.store,
		Clock:     w.clock,
		Log:       log,
	})
	t.Cleanup(w.checkRuns)
	return w
}

// pair pairs the backup as 'tails-backup pair' does: the helper marks it (plugged in, unlocked
// and mounted), which also makes the agent's state folder stateDir in this Tails' Persistent
// Storage; then the state records the pairing.
func (w *realWorld) pair(stateDir string) {
	t := w.t
	t.Helper()
	w.plug(true)
	if _, err := w.helper.Run(context.Background(), newRequest(wire.OpMark, backupUUID), nil); err != nil {
		t.Fatalf("mark the backup: %v", err)
	}
	w.udisks.Unplug(w.backupDrive())
	if m := readMarkerAt(t, w.dst.mnt); m.Source != bootUUID || m.State != tails.StateIncomplete {
		t.Fatalf("marker after pairing: %+v", m)
	}
	var st unix.Stat_t
	if err := unix.Lstat(stateDir, &st); err != nil || st.Mode != unix.S_IFDIR|0o700 || st.Uid != tails.AmnesiaUID {
		t.Fatalf("the state folder made by mark: %+v %v", st, err)
	}
	if _, err := w.store.Update(context.Background(), func(s *pairing.State) error {
		return s.Pair(pairing.PairedBackup{UUID: backupUUID, Label: "Kingston DataTraveler", Size: 16 << 30, Added: w.clock.Now().Add(-time.Hour)})
	}); err != nil {
		t.Fatal(err)
	}
}

func (w *realWorld) connect(addr string) *dbus.Conn {
	w.t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { conn.Close() })
	return conn
}

// setDevice makes the fake's cleartext block at p stand for the loop device of im.
func (w *realWorld) setDevice(p dbus.ObjectPath, im *loopImage) {
	w.udisks.Set(p, udisks.IfaceBlock, "DeviceNumber", im.dev)
	w.udisks.Set(p, udisks.IfaceBlock, "Device", append([]byte(im.loop), 0))
	w.udisks.Set(p, udisks.IfaceBlock, "PreferredDevice", append([]byte(im.loop), 0))
}

func (w *realWorld) backupDrive() dbus.ObjectPath {
	return udiskstest.DrivePath("Kingston", "DataTraveler", "BACKUP0002")
}

// plug plugs the backup in: locked, as a stick always is when it is plugged in, or unlocked
// and mounted at the real destination. The second is only for a stick already there when the
// agent starts (the Files browser opened it): the fake adds a stick object by object, so an
// agent running could see the partition before its cleartext device and rightly ask for the
// passphrase.
func (w *realWorld) plug(mounted bool) udiskstest.StickPaths {
	if w.udisks.Exists(w.backupDrive()) {
		w.udisks.Unplug(w.backupDrive())
	}
	spec := udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: udiskstest.BackupPassphrase, LUKSUUID: backupUUID}
	if mounted {
		spec.MountedAt = w.dst.mnt
	}
	p := w.udisks.AddStick(spec)
	if mounted {
		w.setDevice(p.Cleartext, w.dst)
	}
	return p
}

func (w *realWorld) start() {
	go func() { w.done <- w.agent.Run(w.ctx) }()
	w.t.Cleanup(w.stop)
}

func (w *realWorld) stop() {
	if w.stopped {
		return
	}
	w.stopped = true
	w.cancel()
	select {
	case err := <-w.done:
		if err != nil {
			w.t.Errorf("agent: %v", err)
		}
	case <-time.After(e2eWait):
		w.t.Error("the agent did not stop within its deadline")
	}
}

// waitNoteAfter waits for a notification, after the one numbered seq, whose summary contains
// one of ss.
func (w *realWorld) waitNoteAfter(seq int, ss ...string) notifytest.Notification {
	w.t.Helper()
	return w.notes.WaitFor(w.t, func(n notifytest.Notification) bool {
		return n.Seq > seq && slices.ContainsFunc(ss, func(s string) bool { return strings.Contains(n.Summary, s) })
	}, e2eWait)
}

// lastSeq is the number of the last notification received.
func (w *realWorld) lastSeq() int {
	ns := w.notes.Notifications()
	if len(ns) == 0 {
		return 0
	}
	return ns[len(ns)-1].Seq
}

func (w *realWorld) state() pairing.State {
	w.t.Helper()
	st, err := w.store.Load(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

// lastRun is the last operation of the helper, which must be an update.
func (w *realWorld) lastRun() helperRun {
	w.t.Helper()
	runs := w.helper.Runs()
	if len(runs) == 0 {
		w.t.Fatal("the helper never ran")
	}
	r := runs[len(runs)-1]
	if r.Req.Op != wire.OpUpdate || r.Req.Backup != backupUUID {
		w.t.Fatalf("last helper request %+v, want an update of the backup", r.Req)
	}
	return r
}

// checkRuns reports what the in-process client saw wrong in the helper's protocol, and that
// no passphrase reached a log.
func (w *realWorld) checkRuns() {
	for i, r := range w.helper.Runs() {
		for _, p := range r.Problems {
			w.t.Errorf("helper run %d (%s): %s", i, r.Req.Op, p)
		}
	}
	if strings.Contains(w.logs.String(), udiskstest.BackupPassphrase) {
		w.t.Error("the passphrase of the backup is in the logs")
	}
}

// checkDone checks what the user sees and what is on disk after a successful update: the
// note's counts are the helper's report, the backup is an exact copy (but for excludes), the
// marker is complete, the state records the success, the stick was ejected and sleep allowed
// again. It returns the report.
func (w *realWorld) checkDone(done notifytest.Notification, ejects int, excludes ...string) *wire.Report {
	t := w.t
	t.Helper()
	run := w.lastRun()
	if run.Err != nil || run.Report == nil {
		t.Fatalf("the helper's update failed: %v", run.Err)
	}
	rep := run.Report
	changed := rep.Created + rep.Updated + rep.MetadataOnly + rep.Deleted
	files := fmt.Sprintf("%d files", changed)
	if changed == 1 {
		files = "1 file"
	}
	want := fmt.Sprintf("%s changed, %s copied.", files, l10n.English().Size(rep.BytesCopied))
	if !strings.HasPrefix(done.Body, want) {
		t.Errorf("done note %q, want it to start with %q", done.Body, want)
	}
	if rep.ErrorCount != 0 {
		t.Errorf("the update had %d file errors: %+v", rep.ErrorCount, rep.Errors)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt, excludes...); diff != "" {
		t.Errorf("the backup differs from the source:\n%s", diff)
	}
	if tmp := tempFiles(t, w.dst.mnt); len(tmp) > 0 {
		t.Errorf("temporary files left on the backup: %q", tmp)
	}
	m := readMarkerAt(t, w.dst.mnt)
	if m.State != tails.StateComplete || m.Source != bootUUID || m.TailsVersion != "6.10" || !m.Finished.Equal(rep.Finished) || m.Finished.Before(m.Started) {
		t.Errorf("marker %+v after a complete update (report finished %v)", m, rep.Finished)
	}
	st := w.state()
	b := st.Backup(backupUUID)
	if b == nil || !b.LastSuccess.Equal(w.clock.Now()) || !st.LastSuccess.Equal(w.clock.Now()) || st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultSuccess {
		t.Errorf("state after the update (now %v): %+v", w.clock.Now(), st)
	}
	for _, m := range []string{"Unmount", "Lock", "PowerOff"} {
		if n := len(w.udisks.CallsOf(m)); n != ejects {
			t.Errorf("udisks %s called %d times, want %d", m, n, ejects)
		}
	}
	if w.udisks.Exists(w.backupDrive()) {
		t.Error("the backup was not powered off")
	}
	w.checkSleepAllowed(ejects)
	return rep
}

// checkSleepAllowed checks that logind got n inhibitor requests and that every lock was
// released (the read ends of the fake's pipes see the end of file).
func (w *realWorld) checkSleepAllowed(n int) {
	w.t.Helper()
	w.login1.CloseOwnCopies()
	calls, reads := w.login1.Calls(), w.login1.Reads()
	if len(calls) != n {
		w.t.Errorf("logind got %d inhibitor requests, want %d: %q", len(calls), n, calls)
	}
	for _, c := range calls {
		if c != [4]string{"sleep:shutdown", "Tails Backup", "Updating your backup Tails", "block"} {
			w.t.Errorf("inhibitor request %q", c)
		}
	}
	for i, r := range reads {
		_ = r.SetReadDeadline(time.Now().Add(e2eWait))
		if _, err := r.Read(make([]byte, 1)); err != io.EOF {
			w.t.Errorf("sleep inhibitor %d not released: %v", i, err)
		}
	}
}

func countEntries(t *testing.T, root string) (n int) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// ---- the scenarios ----

// TestRealHelperUpdateThenIncremental: a paired backup, already unlocked and mounted, is
// plugged in; the real helper mirrors the sample Persistent Storage onto it; the user is told
// the real counts; rsync finds no difference. Then the user changes files, plugs it in again,
// and the incremental update copies exactly those changes.
func TestRealHelperUpdateThenIncremental(t *testing.T) {
	w := newRealWorld(t, realWorldOpts{})
	// The tails-backup folder (this Tails' pairings) is not backed up.
	entries := countEntries(t, w.src.mnt) - 1 - countEntries(t, filepath.Join(w.src.mnt, tails.StateDirName))
	w.plug(true) // already unlocked and mounted when the agent starts
	w.start()

	done := w.waitNoteAfter(0, "Backup updated: you can unplug it")
	rep := w.checkDone(done, 1)
	t.Logf("first update: %q; report %+v", done.Body, *rep)
	// Everything but lost+found (which mkfs made on both) is new on the backup; the root and
	// lost+found get the source's metadata.
	if rep.Created != int64(entries-1) || rep.Updated != 0 || rep.Deleted != 0 {
		t.Errorf("first update: created %d updated %d deleted %d, want %d created and nothing else", rep.Created, rep.Updated, rep.Deleted, entries-1)
	}
	if got := w.udisks.CallsOf("Unlock"); len(got) != 0 || len(w.asker.(*pinentrytest.FakeAsker).Prompts()) != 0 {
		t.Errorf("the passphrase of an unlocked backup was asked (%d Unlock calls)", len(got))
	}
	if _, err := os.Lstat(filepath.Join(w.dst.mnt, tails.StateDirName)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("this Tails' pairings were copied onto the backup (lstat: %v)", err)
	}
	if w.helper.Runs()[1].Progress == 0 {
		t.Error("no progress event from the helper")
	}
	first := readMarkerAt(t, w.dst.mnt)

	// The user works: an edit, a deletion and an addition in one folder, a chmod elsewhere.
	w.clock.Advance(3 * time.Hour)
	docs := filepath.Join(w.src.mnt, "Persistent/Documents")
	if err := os.WriteFile(filepath.Join(docs, "report.odt"), randomBytes(300<<10, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(docs, "old.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(docs, "new.txt"), []byte("new file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(filepath.Join(docs, "new.txt"), tails.AmnesiaUID, tails.AmnesiaUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(w.src.mnt, "dotfiles/.bashrc"), 0o600); err != nil {
		t.Fatal(err)
	}
	seq := w.lastSeq()
	w.plug(false)
	done2 := w.waitNoteAfter(seq, "Backup updated: you can unplug it")
	rep2 := w.checkDone(done2, 2)
	t.Logf("second update: %q; report %+v", done2.Body, *rep2)
	// Created new.txt; updated report.odt; deleted old.txt; metadata of .bashrc (mode) and
	// Documents (mtime), and the root's (see rootCounted). The agent's state.json, rewritten
	// after the first update, is not backed up.
	if rep2.Created != 1 || rep2.Updated != 1 || rep2.Deleted != 1 || rep2.MetadataOnly != 2+rootCounted {
		t.Errorf("second update: created %d updated %d deleted %d metadata %d, want 1, 1, 1, %d",
			rep2.Created, rep2.Updated, rep2.Deleted, rep2.MetadataOnly, 2+rootCounted)
	}
	if rep2.BytesCopied < 300<<10 || rep2.BytesCopied > 300<<10+64<<10 {
		t.Errorf("second update copied %d bytes, want report.odt's 300 KiB and new.txt", rep2.BytesCopied)
	}
	second := readMarkerAt(t, w.dst.mnt)
	if !second.Started.After(first.Finished) {
		t.Errorf("second marker %+v, first %+v", second, first)
	}

	// Plugged in again without any change by the user: nothing changes but the root
	// (rootCounted); the agent's state, rewritten after the second update, is not backed up.
	w.clock.Advance(time.Hour)
	seq = w.lastSeq()
	w.plug(false)
	done3 := w.waitNoteAfter(seq, "Backup updated: you can unplug it")
	rep3 := w.checkDone(done3, 3)
	t.Logf("third update: %q; report %+v", done3.Body, *rep3)
	if rep3.Created != 0 || rep3.Updated != 0 || rep3.Deleted != 0 || rep3.MetadataOnly != rootCounted {
		t.Errorf("third update: created %d updated %d deleted %d metadata %d, want 0, 0, 0, %d",
			rep3.Created, rep3.Updated, rep3.Deleted, rep3.MetadataOnly, rootCounted)
	}
	if n := len(w.asker.(*pinentrytest.FakeAsker).Prompts()); n != 2 {
		t.Errorf("%d passphrase prompts, want 2 (one per plug of the locked stick)", n)
	}
}

// rootCounted is what the backup's root adds to the changes of every update. The helper writes
// the marker "incomplete" at the root before the mirror runs, which touches the root's mtime; it
// puts it back, so the root counts only when it really changed.
const rootCounted = 0

// TestRealHelperDoneWithoutReport: the real helper ends mark (and promote, and
// create-persistence) with a done event without a report; the real HelperClient must accept
// it, or 'tails-backup pair', 'tails-backup promote' and the agent's "Make this my main Tails"
// report a failure after the helper did the job. The helper's very event is replayed to the
// client by a shell.
func TestRealHelperDoneWithoutReport(t *testing.T) {
	w := newRealWorld(t, realWorldOpts{})
	mark := w.helper.Runs()[0]
	if mark.Req.Op != wire.OpMark || mark.Final == nil || mark.Final.Event != wire.EventDone {
		t.Fatalf("the pairing's mark: %+v", mark)
	}
	line, err := json.Marshal(mark.Final)
	if err != nil {
		t.Fatal(err)
	}
	log, _ := logtest.New(t)
	client := wire.NewHelperClient([]string{"sh", "-c", `printf '%s\n' "$1"; cat >/dev/null`, "sh", string(line)}, log)
	_, err = client.Run(logtest.Context(t), newRequest(wire.OpMark, backupUUID), nil)
	if err != nil {
		t.Fatalf("HelperClient on the helper's done event %s: %v", line, err)
	}
}

// TestRealHelperLockedStickPinentry: the backup is plugged in locked; the agent asks the
// passphrase through a pinentry program (wrong, then right), unlocks it through udisks2 and
// updates it.
func TestRealHelperLockedStickPinentry(t *testing.T) {
	requireRealWorld(t)
	pin, cmdLog, pinLogs := fakePinentry(t, "not the passphrase", udiskstest.BackupPassphrase)
	w := newRealWorld(t, realWorldOpts{asker: pin})
	w.start()
	w.plug(false)
	done := w.waitNoteAfter(0, "Backup updated: you can unplug it")
	w.checkDone(done, 1)
	if n := len(w.udisks.CallsOf("Unlock")); n != 2 {
		t.Errorf("%d Unlock calls, want 2 (a wrong passphrase, then the right one)", n)
	}
	if mounts := w.udisks.CallsOf("Mount"); len(mounts) != 1 {
		t.Errorf("Mount calls %+v", mounts)
	}
	var errs []string
	for _, c := range readCommands(t, cmdLog) {
		if strings.Contains(c, "SETERROR") {
			errs = append(errs, c)
		}
	}
	if len(errs) != 1 || !strings.HasPrefix(errs[0], "1: ") || !strings.Contains(errs[0], "Wrong passphrase") {
		t.Errorf("pinentry errors shown %q, want one on the second dialog", errs)
	}
	if strings.Contains(pinLogs.String(), udiskstest.BackupPassphrase) {
		t.Error("the passphrase is in the pinentry client's log")
	}
}

// TestRealHelperCancelThenFinish: the user clicks Cancel on the progress notification in the
// middle of a long copy; the helper stops, the backup is marked incomplete with no temporary
// file left; the next plug finishes the update.
func TestRealHelperCancelThenFinish(t *testing.T) {
	w := newRealWorld(t, realWorldOpts{srcMiB: 256, dstMiB: 256, fill: func(t *testing.T, root string) {
		fillSample(t, root)
		fillBulk(t, root, 16, 100, 96<<10) // 1600 files, 150 MiB
	}})
	w.plug(true)
	w.start()

	// A copy progress event with data copied has reached the agent: the copy is under way.
	select {
	case ev := <-w.helper.copying:
		t.Logf("copying: %+v", ev)
	case <-time.After(e2eWait):
		t.Fatal("no copy progress from the helper")
	}
	p := w.notes.WaitFor(t, func(n notifytest.Notification) bool {
		return n.Summary == "Updating your backup Tails" && strings.Contains(n.Body, "% done") && slices.Contains(n.ActionKeys(), actCancel)
	}, e2eWait)
	seq := w.lastSeq()
	clicked := time.Now()
	w.notes.Click(t, p.ID, actCancel)
	n := w.waitNoteAfter(seq, "Backup update cancelled", "Backup updated", "not updated")
	if n.Summary != "Backup update cancelled" {
		t.Fatalf("after Cancel: %q: %q (the copy ended before the cancel reached the helper?)", n.Summary, n.Body)
	}
	t.Logf("cancelled %v after the click: %q", time.Since(clicked).Round(time.Millisecond), n.Body)
	if !strings.Contains(n.Body, "marked incomplete") {
		t.Errorf("cancel note %q", n.Body)
	}
	run := w.lastRun()
	if !run.CancelSent || !errors.Is(run.Err, wire.ErrHelperCancelled) || !errors.Is(run.Err, context.Canceled) {
		t.Errorf("helper run: cancel line sent %v, error %v; want a cancel line and a cancelled error", run.CancelSent, run.Err)
	}
	if !strings.Contains(w.logs.String(), "cancel requested") {
		t.Error("the helper did not log a cancel line: was it cancelled by the end of its input instead?")
	}
	if m := readMarkerAt(t, w.dst.mnt); m.State != tails.StateIncomplete || m.Source != bootUUID {
		t.Errorf("marker after the cancel %+v, want incomplete", m)
	}
	// A cancelled update keeps the temporaries of the large files it was copying, for the next
	// one to resume (sync/resume.go); any other temporary is removed.
	for _, tmp := range tempFiles(t, w.dst.mnt) {
		if !resumableRe.MatchString(filepath.Base(tmp)) {
			t.Errorf("temporary file left on the backup: %q", tmp)
		}
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff == "" {
		t.Error("the cancelled update copied everything: the cancel came too late to test anything")
	}
	if st := w.state(); st.LastAttempt == nil || st.LastAttempt.Result != pairing.ResultIncomplete || !st.Backup(backupUUID).LastSuccess.IsZero() {
		t.Errorf("state after the cancel: %+v", st)
	}
	for _, m := range []string{"Unmount", "Lock", "PowerOff"} {
		if len(w.udisks.CallsOf(m)) != 1 {
			t.Errorf("udisks %s called %d times after the cancel, want once", m, len(w.udisks.CallsOf(m)))
		}
	}

	seq = w.lastSeq()
	w.clock.Advance(time.Hour)
	w.plug(false)
	done := w.waitNoteAfter(seq, "Backup updated: you can unplug it")
	rep := w.checkDone(done, 2)
	t.Logf("finished: %q; report %+v", done.Body, *rep)
}

// TestRealHelperThunderbirdSkipped: Thunderbird is running and the user chooses to skip its
// data: the backup keeps its previous copy of thunderbird/ while everything else is updated.
func TestRealHelperThunderbirdSkipped(t *testing.T) {
	q := &quiescetest.FakeQuiescer{}
	q.Features, q.Busy = busyThunderbird()
	w := newRealWorld(t, realWorldOpts{quiescer: q})
	// A first update, before Thunderbird runs (by the helper alone).
	if _, err := w.helper.Run(context.Background(), newRequest(wire.OpUpdate, backupUUID), nil); err == nil {
		t.Fatal("the helper updated a backup that is not plugged in")
	}
	w.plug(true)
	if _, err := w.helper.Run(context.Background(), newRequest(wire.OpUpdate, backupUUID), nil); err != nil {
		t.Fatalf("first update: %v", err)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Fatalf("after the first update:\n%s", diff)
	}
	tbBefore := treeListing(t, filepath.Join(w.dst.mnt, "thunderbird"))

	// New mail and a changed preference; a new document.
	tb := filepath.Join(w.src.mnt, "thunderbird/profile.default")
	if err := os.WriteFile(filepath.Join(tb, "Mail/Inbox"), randomBytes(400<<10, 9), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tb, "prefs.js"), []byte("user_pref(\"mail.check\", false);\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(w.src.mnt, "Persistent/Documents/letter.txt"), []byte("Dear…\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	w.start() // the backup is still plugged in, unlocked and mounted
	ask := w.waitNoteAfter(0, "Close Thunderbird?")
	w.notes.Click(t, ask.ID, actSkipApp)
	done := w.waitNoteAfter(ask.Seq, "Backup updated: you can unplug it")
	if !strings.Contains(done.Body, "The data of Thunderbird Email Client was skipped this time.") {
		t.Errorf("done note %q", done.Body)
	}
	if run := w.lastRun(); !slices.Equal(run.Req.Skip, []string{"thunderbird"}) {
		t.Errorf("helper request %+v, want thunderbird skipped", run.Req)
	}
	w.checkDone(done, 1, "/thunderbird")
	if got := treeListing(t, filepath.Join(w.dst.mnt, "thunderbird")); got != tbBefore {
		t.Errorf("the skipped thunderbird folder changed on the backup:\nbefore:\n%s\nafter:\n%s", tbBefore, got)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); !strings.Contains(diff, "thunderbird/profile.default/Mail/Inbox") {
		t.Errorf("the source's new mail should differ from the backup's old copy; rsync says:\n%s", diff)
	}
	if _, err := os.Lstat(filepath.Join(w.dst.mnt, "Persistent/Documents/letter.txt")); err != nil {
		t.Errorf("the new document was not copied: %v", err)
	}
	if len(q.Closed()) != 0 {
		t.Errorf("Thunderbird was closed: %v", q.Closed())
	}
}
