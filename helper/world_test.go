//go:build linux

package helper

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	gosync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// The test world: two (or more) real ext4 file systems in loop-mounted images, and a fake
// udisks2 on a private bus whose cleartext devices carry the real loop devices' numbers, so that
// the helper's checks against the mount table run for real.

const (
	srcUUID   = "5a1e0000-1111-4222-8333-444455556666"
	dstUUID   = "2f1e3c4d-0000-4000-8000-00000000b0b0"
	otherUUID = "0ddba11a-0000-4000-8000-000000000000"
	iBlock    = "org.freedesktop.UDisks2.Block"
	iFS       = "org.freedesktop.UDisks2.Filesystem"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		udiskstest.SkipOrFail(t, false, "needs root (loop devices, mount, chown)")
	}
	for _, p := range []string{"mkfs.ext4", "mount", "umount", "rsync", "getfacl"} {
		if _, err := exec.LookPath(p); err != nil {
			udiskstest.SkipOrFail(t, true, "%s not found: %v", p, err)
		}
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// image is an ext4 file system in a sparse file, loop-mounted with acl,user_xattr.
type image struct {
	file, mnt string
	dev       uint64
	loop      string // /dev/loopN
}

func newImage(t testing.TB, dir, name string, sizeMiB int64) *image {
	t.Helper()
	im := &image{file: filepath.Join(dir, name+".img"), mnt: filepath.Join(dir, name)}
	f, err := os.Create(im.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeMiB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "mkfs.ext4", "-q", "-F", "-L", tails.PersistenceName, "-E", "lazy_itable_init=0,lazy_journal_init=0", im.file)
	if err := os.Mkdir(im.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-t", "ext4", "-o", "loop,acl,user_xattr", im.file, im.mnt)
	t.Cleanup(func() {
		if err := exec.Command("umount", im.mnt).Run(); err != nil {
			// Busy (a test failed mid-way): detach lazily so the loop device is freed.
			_ = exec.Command("umount", "-l", im.mnt).Run()
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(im.mnt, &st); err != nil {
		t.Fatal(err)
	}
	im.dev = st.Dev
	if unix.Major(st.Dev) != 7 {
		t.Fatalf("%s is on device %d:%d, not a loop device", im.mnt, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
	im.loop = fmt.Sprintf("/dev/loop%d", unix.Minor(st.Dev))
	return im
}

// world is one test machine: the running Tails' Persistent Storage (src) and a backup (dst).
type world struct {
	t      testing.TB
	dir    string
	src    *image
	dst    *image
	fake   *udiskstest.Service
	boot   udiskstest.StickPaths
	backup udiskstest.StickPaths
	sys    System
	clock  atomic.Int64
	bus    string // the address of the private bus of the fake udisks2
}

type worldOpts struct {
	srcMiB, dstMiB int64
	// backup changes the backup stick before it is plugged in.
	backup func(spec *udiskstest.StickSpec)
	// unpaired leaves the backup without a marker.
	unpaired bool
}

func newWorld(t testing.TB, o worldOpts) *world {
	t.Helper()
	requireRoot(t)
	if o.srcMiB == 0 {
		o.srcMiB = 64
	}
	if o.dstMiB == 0 {
		o.dstMiB = 64
	}
	// A short directory: the unix socket of the bus lives elsewhere, but mount points show in
	// error messages.
	dir, err := os.MkdirTemp("", "helper-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	w := &world{t: t, dir: dir}
	w.src = newImage(t, dir, "src", o.srcMiB)
	w.dst = newImage(t, dir, "dst", o.dstMiB)

	addr := udiskstest.StartBus(t)
	w.fake = udiskstest.NewService(t, addr)
	w.bus = addr
	w.boot = w.fake.AddStick(udiskstest.StickSpec{Name: "sda", Vendor: "SanDisk", Model: "Cruzer", Serial: "BOOT0001",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: "p", HintSystem: true,
		LUKSUUID: srcUUID, MountedAt: w.src.mnt})
	w.setDevice(w.boot.Cleartext, w.src)
	spec := udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Serial: "BACKUP0002",
		Removable: true, ConnectionBus: "usb", Tails: true, Passphrase: "q", LUKSUUID: dstUUID, MountedAt: w.dst.mnt}
	if o.backup != nil {
		o.backup(&spec)
	}
	w.backup = w.fake.AddStick(spec)
	if w.backup.Cleartext != "" {
		w.setDevice(w.backup.Cleartext, w.dst)
	}
	w.fake.AddStick(udiskstest.StickSpec{Name: "vda", Model: "Virtual disk", Serial: "internal0", Size: 256 << 30})

	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	version := filepath.Join(dir, "version")
	if err := os.WriteFile(version, []byte("6.10 - 20241203\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.clock.Store(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC).Unix())
	w.sys = System{
		UDisks:      udisks.New(conn, udisks.Options{}),
		Source:      w.src.mnt,
		SystemMount: filepath.Join(dir, "no-medium"),
		VersionFile: version,
		Now:         func() time.Time { return time.Unix(w.clock.Add(60), 0).UTC() },
	}
	// A Tails-like source root.
	fd := openDir(t, w.src.mnt)
	if err := setPersistenceRoot(fd); err != nil {
		t.Fatal(err)
	}
	if !o.unpaired {
		w.writeMarker(w.dst.mnt, tails.Marker{Format: 1, Source: srcUUID, State: tails.StateComplete,
			Started: time.Date(2026, 10, 1, 10, 0, 0, 0, time.UTC), Finished: time.Date(2026, 10, 1, 10, 5, 0, 0, time.UTC),
			TailsVersion: "6.9"})
	}
	return w
}

// setDevice makes the fake's cleartext block at p stand for the loop device of im.
func (w *world) setDevice(p dbus.ObjectPath, im *image) {
	w.fake.Set(p, iBlock, "DeviceNumber", im.dev)
	w.fake.Set(p, iBlock, "Device", append([]byte(im.loop), 0))
	w.fake.Set(p, iBlock, "PreferredDevice", append([]byte(im.loop), 0))
}

// setMountPoints changes where udisks says the cleartext block at p is mounted.
func (w *world) setMountPoints(p dbus.ObjectPath, mps ...string) {
	v := [][]byte{}
	for _, m := range mps {
		v = append(v, append([]byte(m), 0))
	}
	w.fake.Set(p, iFS, "MountPoints", v)
}

func openDir(t testing.TB, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func (w *world) writeMarker(dir string, m tails.Marker) {
	w.t.Helper()
	b, err := m.Marshal()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tails.MarkerName), b, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) marker(dir string) tails.Marker {
	w.t.Helper()
	f, err := os.Open(filepath.Join(dir, tails.MarkerName))
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	m, err := tails.ParseMarker(f)
	if err != nil {
		w.t.Fatal(err)
	}
	return m
}

// ---- running the helper ----

// syncBuffer collects the helper's log; it is shown when a test fails.
type syncBuffer struct {
	mu gosync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// session is one running helper.
type session struct {
	t      testing.TB
	stdin  io.WriteCloser
	events chan wire.Event // every event, closed after the last
	result chan error      // Run's result
	cancel func()          // ends Run's context (a signal)
	logs   *syncBuffer     // the helper's log
	raw    *bytes.Buffer   // every stdout line, for diagnostics
}

// start runs the helper with sys, writes input on its standard input (kept open) and returns.
func start(t testing.TB, sys System, input string) *session {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{t: t, stdin: inW, events: make(chan wire.Event, 4096), result: make(chan error, 1),
		cancel: cancel, logs: &syncBuffer{}, raw: &bytes.Buffer{}}
	l := logrus.New()
	l.SetOutput(s.logs)
	l.SetLevel(logrus.DebugLevel)
	go func() {
		err := Run(ctx, inR, outW, sys, logrus.NewEntry(l))
		outW.Close()
		s.result <- err
	}()
	readerDone := make(chan struct{})
	go s.readEvents(outR, readerDone)
	t.Cleanup(func() {
		inW.Close()
		cancel()
		<-readerDone
		if t.Failed() {
			t.Logf("helper log:\n%s", s.logs.String())
		}
	})
	if input != "" {
		go func() { _, _ = io.WriteString(inW, input) }()
	}
	return s
}

// readEvents parses the helper's standard output into s.events, closing it and then done at
// the end of out.
func (s *session) readEvents(out io.Reader, done chan struct{}) {
	defer close(done)
	defer close(s.events)
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		s.raw.Write(sc.Bytes())
		s.raw.WriteByte('\n')
		var ev wire.Event
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev); err != nil {
			ev = wire.Event{Event: "unparsable", Message: fmt.Sprintf("%v: %q", err, sc.Text())}
		}
		s.events <- ev
	}
}

// send writes a line on the helper's standard input.
func (s *session) send(line string) {
	go func() { _, _ = io.WriteString(s.stdin, line) }()
}

const waitTimeout = 2 * time.Minute

// next returns the next event.
func (s *session) next() (wire.Event, bool) {
	s.t.Helper()
	select {
	case ev, ok := <-s.events:
		return ev, ok
	case <-time.After(waitTimeout):
		s.t.Fatalf("no event from the helper within %s; log:\n%s", waitTimeout, s.logs.String())
	}
	return wire.Event{}, false
}

// finish waits for the end of the helper and returns every remaining event and Run's result.
func (s *session) finish() ([]wire.Event, error) {
	s.t.Helper()
	var evs []wire.Event
	for {
		ev, ok := s.next()
		if !ok {
			break
		}
		evs = append(evs, ev)
	}
	select {
	case err := <-s.result:
		return evs, err
	case <-time.After(waitTimeout):
		s.t.Fatalf("the helper did not return within %s", waitTimeout)
	}
	return nil, nil
}

// checkEnd checks that evs are progress events then exactly one final event, of type want, and
// returns that final event.
func checkEnd(t testing.TB, evs []wire.Event, err error, want wire.EventType) wire.Event {
	t.Helper()
	if len(evs) == 0 {
		t.Fatalf("no event at all (Run returned %v)", err)
	}
	last := evs[len(evs)-1]
	for i, ev := range evs[:len(evs)-1] {
		if ev.Event != wire.EventProgress {
			t.Fatalf("event %d of %d is %+v; only progress events may come before the last", i, len(evs), ev)
		}
	}
	if last.Event != want {
		t.Fatalf("last event %+v, want a %q event", last, want)
	}
	switch want {
	case wire.EventDone:
		if err != nil {
			t.Fatalf("done event but Run returned %v", err)
		}
	case wire.EventError:
		f, ok := err.(*Failure)
		if !ok || f.Code != last.Code || f.Message != last.Message {
			t.Fatalf("error event %+v but Run returned %#v", last, err)
		}
		if strings.Count(strings.TrimSuffix(last.Message, "."), ". ") > 0 || !strings.HasSuffix(last.Message, ".") || strings.Contains(last.Message, "\n") {
			t.Errorf("message %q is not one sentence", last.Message)
		}
	}
	return last
}

func request(op wire.Op, backup string) string {
	b, _ := json.Marshal(wire.Request{Version: wire.ProtocolVersion, Op: op, Backup: backup})
	return string(b) + "\n"
}

// do runs one request to its end, keeping standard input open, and returns its events.
func (w *world) do(op wire.Op, backup string) ([]wire.Event, error) {
	w.t.Helper()
	return start(w.t, w.sys, request(op, backup)).finish()
}

// ---- trees ----

// listing describes every entry of the tree at dir (type, mode, owner, size, times, inode,
// content hash, link target, xattrs), so that any change shows.
func listing(t testing.TB, dir string) string {
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
		line := fmt.Sprintf("%s mode=%o uid=%d gid=%d size=%d mtime=%d.%d ctime=%d.%d ino=%d nlink=%d",
			rel, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, st.Ino, st.Nlink)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" sha=%x", sha256.Sum256(b))
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		buf := make([]byte, 64<<10)
		n, err := unix.Llistxattr(p, buf)
		if err == nil {
			names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
			sort.Strings(names)
			for _, name := range names {
				if name == "" {
					continue
				}
				v := make([]byte, 64<<10)
				m, err := unix.Lgetxattr(p, name, v)
				if err != nil {
					return err
				}
				line += fmt.Sprintf(" %s=%x", name, v[:m])
			}
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// fillSource writes a Persistent Storage-like tree: persistence.conf, folders owned by amnesia,
// symlinks, hard links, xattrs, an ACL, a sparse file, and files with random content.
func fillSource(t testing.TB, root string, dirs, filesPerDir, fileSize int) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(root, tails.PersistenceConfName)
	must(os.WriteFile(conf, []byte("/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia\tsource=dotfiles,link\n"), 0o600))
	must(os.Chown(conf, tails.PersistentStorageUID, tails.PersistentStorageGID))
	for _, d := range []string{"Persistent", "dotfiles", "nm-system-connections"} {
		must(os.Mkdir(filepath.Join(root, d), 0o700))
	}
	must(os.Chown(filepath.Join(root, "Persistent"), tails.AmnesiaUID, tails.AmnesiaUID))
	must(os.Chown(filepath.Join(root, "dotfiles"), tails.AmnesiaUID, tails.AmnesiaUID))
	must(os.WriteFile(filepath.Join(root, "nm-system-connections", "wifi.nmconnection"), []byte("[wifi]\nssid=x\n"), 0o600))
	must(os.Symlink("../Persistent/notes.txt", filepath.Join(root, "dotfiles", ".notes")))
	must(os.WriteFile(filepath.Join(root, "Persistent", "notes.txt"), []byte("hello\n"), 0o640))
	must(os.Link(filepath.Join(root, "Persistent", "notes.txt"), filepath.Join(root, "Persistent", "notes-link.txt")))
	must(unix.Setxattr(filepath.Join(root, "Persistent", "notes.txt"), "user.tag", []byte("important"), 0))
	acl := tails.EncodeACL([]tails.ACLEntry{
		{Tag: tails.ACLUserObj, Perm: 7, ID: tails.ACLUndefinedID},
		{Tag: tails.ACLUser, Perm: 5, ID: 1001},
		{Tag: tails.ACLGroupObj, Perm: 5, ID: tails.ACLUndefinedID},
		{Tag: tails.ACLMask, Perm: 5, ID: tails.ACLUndefinedID},
		{Tag: tails.ACLOther, Perm: 0, ID: tails.ACLUndefinedID},
	})
	must(unix.Setxattr(filepath.Join(root, "Persistent"), tails.ACLXattrAccess, acl, 0))
	sparse, err := os.Create(filepath.Join(root, "Persistent", "sparse.img"))
	must(err)
	must(sparse.Truncate(8 << 20))
	_, err = sparse.WriteAt([]byte("middle"), 4<<20)
	must(err)
	must(sparse.Close())
	buf := make([]byte, fileSize)
	for i := range dirs {
		d := filepath.Join(root, "Persistent", fmt.Sprintf("dir%03d", i), "sub")
		must(os.MkdirAll(d, 0o755))
		for j := range filesPerDir {
			_, _ = rand.Read(buf)
			must(os.WriteFile(filepath.Join(d, fmt.Sprintf("file%04d", j)), buf, 0o644))
		}
	}
}

// rsyncDiff is what rsync finds different between src and dst (nothing when the backup is an
// exact copy), the marker, the pairing store's folder and the backup's xattr cache aside.
func rsyncDiff(t testing.TB, src, dst string) string {
	t.Helper()
	out, err := exec.Command("rsync", "-aHAXS", "--numeric-ids", "--delete", "-n", "-i", "--checksum",
		"--exclude=/"+tails.MarkerName, "--exclude=/"+tails.StateDirName, "--exclude=/"+tails.XattrCacheDirName,
		src+"/", dst+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("rsync: %v\n%s", err, out)
	}
	return string(out)
}
