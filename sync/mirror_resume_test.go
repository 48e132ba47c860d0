//go:build linux

package sync_test

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/internal/killtest"
	"tails-backup/sync"
)

// resumeSize is the size of the large file of the resume tests.
const resumeSize = 48 * mib

// writeRandom writes size bytes drawn from seed to p, with mtime tm.
func writeRandom(t testing.TB, p string, size int64, seed uint64, tm time.Time) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	buf := make([]byte, size)
	for i := 0; i+8 <= len(buf); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	setMtime(t, p, tm)
}

// partialsUnder lists the resumable temporaries under root.
func partialsUnder(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	for _, p := range temporariesUnder(t, root) {
		if sync.IsPartialName(filepath.Base(p)) {
			out = append(out, p)
		}
	}
	return out
}

// onlyPartial returns the single resumable temporary under root.
func onlyPartial(t testing.TB, root string) string {
	t.Helper()
	ps := partialsUnder(t, root)
	if len(ps) != 1 {
		t.Fatalf("%d resumable temporaries under %s, not 1: %q (all temporaries: %q)", len(ps), root, ps, temporariesUnder(t, root))
	}
	return ps[0]
}

// cancelAt runs Mirror from src to dst and cancels it once the copy of rel has written past
// off bytes; it returns the size of the temporary the cancelled run kept.
func cancelAt(t testing.TB, src, dst, rel string, off int64) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	defer cancel()
	_, err := sync.Mirror(ctx, src, dst, sync.WithAfterData(sync.Options{}, func(r string, at int64) {
		if r == rel && at >= off {
			cancel()
		}
	}))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the run was to be cancelled at %d bytes of %s; it returned %v", off, rel, err)
	}
	st, err := os.Stat(onlyPartial(t, dst))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// block rounds n down to the 4 KiB block from which a copy resumes.
func block(n int64) int64 { return n / 4096 * 4096 }

// TestMirrorResumes cancels a run in the middle of a large file (at 38 %, as the demo's pull
// of a video), changes what each case changes, and checks that the next run writes only what
// it must: the rest of the file when the source is unchanged and the kept part is intact; from
// the first wrong block of a corrupted or cut part; everything when the source changed. Each
// result must be exact (rsync --checksum, our own comparison, a second run changing nothing)
// and leave no temporary.
func TestMirrorResumes(t *testing.T) {
	parallel(t)
	srcRoot := newExt4(t, 640)
	dstRoot := newExt4(t, 640)
	tm := time.Date(2026, 11, 2, 3, 4, 5, 600000001, time.UTC)
	const rel = "Videos/film.mkv"
	cut := int64(resumeSize * 38 / 100)
	for _, c := range []struct {
		name string
		// change changes the source file or the kept temporary, whose size was kept; it
		// returns how many bytes the next run may keep.
		change func(t *testing.T, srcFile, partial string, kept int64) int64
		// gone: the source file is deleted, so the next run writes nothing.
		gone bool
	}{
		{"unchanged", func(t *testing.T, _, _ string, kept int64) int64 { return kept }, false},
		{"a byte of the kept part is wrong", func(t *testing.T, _, partial string, kept int64) int64 {
			at := kept/3 + 1234
			flipByte(t, partial, at)
			return block(at)
		}, false},
		{"its first byte is wrong", func(t *testing.T, _, partial string, kept int64) int64 {
			flipByte(t, partial, 0)
			return 0
		}, false},
		{"the kept part was cut short, as a pull leaves it", func(t *testing.T, _, partial string, kept int64) int64 {
			short := kept/4 + 999
			if err := os.Truncate(partial, short); err != nil {
				t.Fatal(err)
			}
			return block(short)
		}, false},
		{"zeros after the synced part, as a pull may leave them", func(t *testing.T, _, partial string, kept int64) int64 {
			f, err := os.OpenFile(partial, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(make([]byte, 1<<20), kept/2); err != nil {
				t.Fatal(err)
			}
			return block(kept / 2)
		}, false},
		{"the source was rewritten", func(t *testing.T, srcFile, _ string, kept int64) int64 {
			writeRandom(t, srcFile, resumeSize, 99, tm.Add(time.Hour))
			return 0
		}, false},
		{"the source was touched", func(t *testing.T, srcFile, _ string, kept int64) int64 {
			setMtime(t, srcFile, tm.Add(time.Second))
			return 0
		}, false},
		{"the source was only appended to", func(t *testing.T, srcFile, _ string, kept int64) int64 {
			f, err := os.OpenFile(srcFile, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte("more")); err != nil {
				t.Fatal(err)
			}
			return 0 // another version: its temporary is another one
		}, false},
		{"the source file was deleted", func(t *testing.T, srcFile, _ string, kept int64) int64 {
			if err := os.Remove(srcFile); err != nil {
				t.Fatal(err)
			}
			return 0
		}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, dst := filepath.Join(srcRoot, c.name), filepath.Join(dstRoot, c.name)
			mkdirs(t, src, dst)
			srcFile := filepath.Join(src, rel)
			writeRandom(t, srcFile, resumeSize, 1, tm)
			writeFile(t, filepath.Join(src, "notes.txt"), []byte("a small file beside it"))
			kept := cancelAt(t, src, dst, rel, cut)
			if kept < cut || kept >= resumeSize {
				t.Fatalf("the cancelled run kept %d bytes of %d; it was cancelled after %d", kept, resumeSize, cut)
			}
			want := c.change(t, srcFile, onlyPartial(t, dst), kept)
			var last sync.Progress
			rep := mirror(t, src, dst, sync.Options{Progress: func(p sync.Progress) {
				if p.Phase != sync.PhaseScan && last.Phase != sync.PhaseDone {
					last = p
				}
				if p.BytesDone > p.BytesTotal {
					t.Errorf("progress: %d bytes done of %d", p.BytesDone, p.BytesTotal)
				}
			}, ProgressInterval: time.Millisecond})
			if left := temporariesUnder(t, dst); len(left) != 0 {
				t.Errorf("the run left temporaries: %q", left)
			}
			size := int64(0)
			if !c.gone {
				size = lstat(t, srcFile).Size
			}
			t.Logf("cancelled at %d bytes, %d kept; the next run resumed %d and wrote %d of %d", cut, kept, rep.BytesResumed, rep.BytesCopied, size)
			if rep.BytesResumed != want {
				t.Errorf("the next run kept %d bytes of the earlier copy, not %d", rep.BytesResumed, want)
			}
			if rep.BytesCopied+rep.BytesResumed < size || rep.BytesCopied > size-want+int64(len("a small file beside it")) {
				t.Errorf("the next run wrote %d bytes of a %d-byte file of which it kept %d", rep.BytesCopied, size, rep.BytesResumed)
			}
			// The kept bytes are done in the progress, not taken out of its total: the bar
			// moves while they are read back.
			if last.Phase != sync.PhaseDone || last.BytesDone != rep.BytesCopied+rep.BytesResumed || last.BytesTotal != last.BytesDone {
				t.Errorf("the last progress: %s, %d of %d bytes done; the run copied %d and kept %d", last.Phase, last.BytesDone, last.BytesTotal, rep.BytesCopied, rep.BytesResumed)
			}
		})
	}
}

// flipByte inverts the byte at off of the file p.
func flipByte(t testing.TB, p string, off int64) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// resumeChildEnv makes the test binary the child of TestMirrorResumesAfterKill: its value is a
// JSON resumeChildArgs.
const resumeChildEnv = "TB_RESUME_CHILD"

type resumeChildArgs struct {
	Src, Dst, Rel string
	SyncAt        int64 // syncfs the destination once the file's copy passes it (0: never)
	StopAt        int64 // then print "at N" and wait to be killed once it passes this
}

// TestMirrorResumeChild is not a test: it is the process that TestMirrorResumesAfterKill kills.
func TestMirrorResumeChild(t *testing.T) {
	killtest.Child(resumeChildEnv, func(arg string) error {
		var a resumeChildArgs
		if err := json.Unmarshal([]byte(arg), &a); err != nil {
			return err
		}
		dst, err := unix.Open(a.Dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		synced := false
		_, err = sync.Mirror(context.Background(), a.Src, a.Dst, sync.WithAfterData(sync.Options{}, func(rel string, off int64) {
			if rel != a.Rel {
				return
			}
			if a.SyncAt > 0 && off >= a.SyncAt && !synced {
				synced = true
				unix.Syncfs(dst) // as the rename barrier does for the other files' batch
				fmt.Printf("synced %d\n", off)
			}
			if off >= a.StopAt {
				fmt.Printf("at %d\n", off)
				os.Stdout.Sync()
				time.Sleep(time.Hour) // wait for the kill
			}
		}))
		return fmt.Errorf("the run was to be killed, and it ended: %v", err)
	})
}

// TestMirrorResumesAfterKill kills (SIGKILL) a Mirror process in the middle of a large file at
// 38 %, on real ext4 images, and checks that the next run writes only the rest. The "pulled"
// cases also cut the destination's power at the kill (EXT4_IOC_SHUTDOWN without flushing: the
// page cache is lost, as when a stick is pulled), the first after a syncfs at 20 % (as the
// rename barrier makes for other files' batches), the second 7 s after the copy stopped with
// nothing else synced (the engine started the writeback of each 8 MiB, and ext4 commits its
// journal every 5 s): the next mount replays the journal, and the next run keeps at least what
// was on the device, and never more than the file had. The result must be exact, the file
// system clean (e2fsck) and no temporary left. TAILS_BACKUP_RESUME_MIB sets the file's size
// (48 MiB; the demo's video is 200).
func TestMirrorResumesAfterKill(t *testing.T) {
	parallel(t)
	size := int64(resumeSize)
	if v := os.Getenv("TAILS_BACKUP_RESUME_MIB"); v != "" { // the demo's 200 MB video, for docs/sync.md
		n, err := strconv.Atoi(v)
		if err != nil || n < 16 {
			t.Fatalf("TAILS_BACKUP_RESUME_MIB=%q: give a size in MiB of 16 or more", v)
		}
		size = int64(n) * mib
	}
	imgMiB := max(256, int(2*size/mib)+64)
	tm := time.Date(2026, 11, 2, 3, 4, 5, 600000001, time.UTC)
	const rel = "Videos/film.mkv"
	for _, c := range []struct {
		name   string
		syncAt int64         // the child syncs the destination there (0: never)
		pull   time.Duration // the destination's power is cut that long after the child stopped (0: no cut)
		// kept is the least the next run must keep, from where the copy stopped and where
		// the destination was synced.
		kept func(at, synced int64) int64
		size int64 // of the file, when not the test's
	}{
		{"killed", 0, 0, func(at, _ int64) int64 { return at }, 0}, // the page cache is written back
		{"pulled after a syncfs", size * 20 / 100, time.Millisecond, func(_, synced int64) int64 { return block(synced) }, 0},
		{"pulled 7 s later", 0, 7 * time.Second, func(at, _ int64) int64 { return at - 8*mib - 256*kib }, 0},
		// Before ext4's next journal commit (5 s): what the copy flushed at its last
		// checkpoint is kept, whatever the page cache held.
		{"pulled at once", 0, time.Millisecond, func(at, _ int64) int64 { return at / sync.CheckpointStep * sync.CheckpointStep },
			max(size, 3*sync.CheckpointStep)},
	} {
		pull := c.pull > 0
		size := cmp.Or(c.size, size)
		imgMiB := max(imgMiB, int(2*size/mib)+64)
		t.Run(c.name, func(t *testing.T) {
			scratch := killtest.ScratchDir(t)
			src := scratchExt4(t, scratch, "src", imgMiB)
			img := newImageAt(t, filepath.Join(scratch, "dst.img"), imgMiB)
			dst := img.mountAt(t, filepath.Join(scratch, "dst"))
			srcFile := filepath.Join(src, rel)
			writeRandom(t, srcFile, size, 3, tm)
			a := resumeChildArgs{Src: src, Dst: dst, Rel: rel, StopAt: size * 38 / 100, SyncAt: c.syncAt}
			b, _ := json.Marshal(a)
			cmd := killtest.Command("TestMirrorResumeChild", resumeChildEnv, string(b))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var synced, at int64
			sc := bufio.NewScanner(out)
			for at == 0 && sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 && f[0] == "synced" {
					synced, _ = strconv.ParseInt(f[1], 10, 64)
				}
				if len(f) == 2 && f[0] == "at" {
					at, _ = strconv.ParseInt(f[1], 10, 64)
				}
			}
			if at == 0 {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the child ended without reaching %d bytes of %s", a.StopAt, rel)
			}
			if pull {
				time.Sleep(c.pull)
				root, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
				if err != nil {
					t.Fatal(err)
				}
				err = unix.IoctlSetPointerInt(root, ext4IocShutdown, ext4GoingFlagsNoLogFlush)
				unix.Close(root)
				if err != nil {
					t.Fatalf("EXT4_IOC_SHUTDOWN: %v", err)
				}
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			if pull {
				// The next mount replays the journal, as Tails' next mount would. It mounts a
				// copy of the image: a mount namespace made meanwhile by another process of
				// the machine may hold the shut-down file system after the unmount, and
				// mounting its image again would give back that same shut-down mount.
				img.unmount(t)
				img = copyImage(t, img)
				dst = img.mountAt(t, dst)
			}
			left := partialsUnder(t, dst)
			var keptSize int64
			if len(left) == 1 {
				keptSize = lstat(t, left[0]).Size
			}
			rep := mirror(t, src, dst, sync.Options{})
			if l := temporariesUnder(t, dst); len(l) != 0 {
				t.Errorf("the run left temporaries: %q", l)
			}
			t.Logf("%s at %d bytes of %d (synced at %d); %d temporary of %d bytes found; the next run resumed %d and wrote %d",
				c.name, at, size, synced, len(left), keptSize, rep.BytesResumed, rep.BytesCopied)
			if rep.BytesCopied+rep.BytesResumed != size {
				t.Errorf("the next run wrote %d and kept %d bytes of a %d-byte file", rep.BytesCopied, rep.BytesResumed, size)
			}
			if lo := c.kept(at, synced); rep.BytesResumed < lo || rep.BytesResumed > at {
				t.Errorf("the next run kept %d bytes; want between %d and %d", rep.BytesResumed, lo, at)
			}
			img.unmount(t)
			run(t, "e2fsck", "-fn", img.Path)
		})
	}
}

// copyImage copies the unmounted image img to a new file beside it (holes kept).
func copyImage(t testing.TB, img *image) *image {
	t.Helper()
	p := img.Path + ".next"
	run(t, "cp", "--sparse=always", img.Path, p)
	return &image{Path: p}
}

// TestMirrorResumeHostileTemporary: the destination is hostile, and its user may put anything
// under the name of a file's resumable temporary. A symlink, a hard link to another file of
// the destination (the backup's marker, which the run excludes), a FIFO or a directory there is
// never written through nor followed: the other file keeps its content, the run ends exact and
// leaves nothing behind.
func TestMirrorResumeHostileTemporary(t *testing.T) {
	parallel(t)
	srcRoot := newExt4(t, 256)
	dstRoot := newExt4(t, 256)
	outside := t.TempDir()
	tm := time.Date(2026, 11, 2, 3, 4, 5, 600000001, time.UTC)
	const rel = "film.mkv"
	for _, c := range []struct {
		name  string
		plant func(t *testing.T, dst, tmp string)
	}{
		{"a symlink to a file outside", func(t *testing.T, dst, tmp string) {
			if err := os.Symlink(filepath.Join(outside, "victim"), filepath.Join(dst, tmp)); err != nil {
				t.Fatal(err)
			}
		}},
		{"a hard link to another file", func(t *testing.T, dst, tmp string) {
			if err := os.Link(filepath.Join(dst, "marker"), filepath.Join(dst, tmp)); err != nil {
				t.Fatal(err)
			}
		}},
		{"a FIFO", func(t *testing.T, dst, tmp string) {
			if err := unix.Mkfifo(filepath.Join(dst, tmp), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"a directory", func(t *testing.T, dst, tmp string) {
			mkdirs(t, filepath.Join(dst, tmp, "inside"))
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src, dst := filepath.Join(srcRoot, c.name), filepath.Join(dstRoot, c.name)
			mkdirs(t, src, dst)
			victim := []byte("the victim's own content, to stay")
			writeFile(t, filepath.Join(outside, "victim"), victim)
			writeFile(t, filepath.Join(dst, "marker"), victim)
			srcFile := filepath.Join(src, rel)
			writeRandom(t, srcFile, 4*mib, 5, tm)
			c.plant(t, dst, sync.PartialName(rel, lstat(t, srcFile)))
			// A run that hangs fails at mirrorTimeout.
			rep := mirror(t, src, dst, sync.Options{Exclude: []string{"marker"}})
			if rep.BytesResumed != 0 {
				t.Errorf("the run resumed %d bytes from a planted entry", rep.BytesResumed)
			}
			for _, p := range []string{filepath.Join(outside, "victim"), filepath.Join(dst, "marker")} {
				if got := readFile(t, p); string(got) != string(victim) {
					t.Errorf("%s was written through the temporary's name: %d bytes", p, len(got))
				}
			}
			if left := temporariesUnder(t, dst); len(left) != 0 {
				t.Errorf("the run left temporaries: %q", left)
			}
		})
	}
}
