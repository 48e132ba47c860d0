package sync_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"testing"
	"time"

	"tails-backup/sync"
)

// TestMirrorVanishedSource proves that source files and directories deleted during the copy are
// reported as vanished and skipped, and that the run completes: every vanished file is either
// copied whole (it went before the deletion) or reported (itself or a directory above it), and no
// other kind of error is reported.
func TestMirrorVanishedSource(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dst := newExt4(t, 64)
	content := func(p string) []byte { return append([]byte(p+"\n"), pattern(4*kib, byte(len(p)))...) }
	var nodes []node
	var vanishing []string
	for d := 0; d < 20; d++ {
		for f := 0; f < 50; f++ {
			p := fmt.Sprintf("vanish/d%02d/f%03d", d, f)
			vanishing = append(vanishing, p)
			nodes = append(nodes, node{Path: p, Type: 'f', Data: string(content(p))})
		}
	}
	for f := 0; f < 50; f++ {
		nodes = append(nodes, node{Path: fmt.Sprintf("keep/f%03d", f), Type: 'f', Data: "keep"})
	}
	build(t, src, nodes...)

	var once gosync.Once
	var doneAtDeletion, totalAtDeletion int64
	events := &eventLog{hook: func(p sync.Progress) {
		if p.Phase != sync.PhaseCopy {
			return
		}
		once.Do(func() {
			doneAtDeletion, totalAtDeletion = p.FilesDone, p.FilesTotal
			if err := os.RemoveAll(filepath.Join(src, "vanish")); err != nil {
				t.Errorf("remove: %v", err)
			}
		})
	}}
	rep, err := runMirror(t, src, dst, sync.Options{Progress: events.record, ProgressInterval: time.Millisecond, NoSync: true})
	if err != nil {
		t.Fatalf("Mirror did not complete: %v\n%s", err, fmtReport(rep))
	}
	if doneAtDeletion == 0 && totalAtDeletion == 0 {
		t.Fatalf("no PhaseCopy progress event came: the source could not be changed during the copy")
	}
	t.Logf("deleted the source files at %d/%d entries done; %s", doneAtDeletion, totalAtDeletion, fmtReport(rep))

	reported := map[string]bool{}
	for _, e := range rep.Errors {
		if !isVanished(e) {
			t.Errorf("unexpected error for a vanished file (want op \"vanished\" or sync.ErrVanished): op=%q path=%q err=%v", e.Op, e.Path, e.Err)
		}
		reported[e.Path] = true
	}
	nReported := 0
	for _, p := range vanishing {
		got, err := os.ReadFile(filepath.Join(dst, p))
		if err == nil {
			if !bytes.Equal(got, content(p)) {
				t.Errorf("%s: copied with wrong content (%d bytes)", p, len(got))
			}
			continue
		}
		if reported[p] || reported[parentOf(p)] || reported["vanish"] {
			nReported++
			continue
		}
		t.Errorf("%s vanished from the source during the copy, is missing from the destination and was not reported", p)
	}
	if nReported == 0 {
		t.Errorf("no vanished file was reported (the deletion came at %d/%d entries done)", doneAtDeletion, totalAtDeletion)
	}
	for f := 0; f < 50; f++ {
		if !exists(filepath.Join(dst, fmt.Sprintf("keep/f%03d", f))) {
			t.Errorf("keep/f%03d was not copied", f)
		}
	}
	mirror(t, src, dst, sync.Options{})
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}

// TestMirrorGrowingSource proves that a file appended to during its copy ends up either copied
// consistently (a prefix of what the file became, at least as long as when the run started) or
// reported with sync.ErrChanging with its previous destination version kept intact.
func TestMirrorGrowingSource(t *testing.T) {
	parallel(t)
	src := newExt4(t, 64)
	dst := newExt4(t, 64)
	logPath := filepath.Join(src, "log")
	initial := pattern(2*mib, 9)
	writeFile(t, logPath, initial)
	for i := 0; i < 20; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("other/f%02d", i)), pattern(256*kib, byte(i)))
	}
	mirror(t, src, dst, sync.Options{})
	oldIno := lstat(t, filepath.Join(dst, "log")).Ino
	writeFile(t, filepath.Join(src, "other/new"), []byte("forces a run"))

	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	appended := make(chan int64)
	go func() {
		defer f.Close()
		n := int64(0)
		chunk := pattern(4*kib, 10)
		for {
			select {
			case <-stop:
				appended <- n
				return
			default:
			}
			if n < 40*mib {
				if _, err := f.Write(chunk); err != nil {
					t.Errorf("append: %v", err)
				}
				n += int64(len(chunk))
			}
			time.Sleep(50 * time.Microsecond) // a steady writer, not a flood
		}
	}()
	rep, err := runMirror(t, src, dst, sync.Options{NoSync: true})
	close(stop)
	n := <-appended
	if err != nil {
		t.Fatalf("Mirror did not complete: %v\n%s", err, fmtReport(rep))
	}
	final := readFile(t, logPath)
	got := readFile(t, filepath.Join(dst, "log"))
	errs := fileErrors(rep, "log")
	for _, e := range rep.Errors {
		if e.Path != "log" {
			t.Errorf("unexpected error: %v", e)
		}
	}
	switch {
	case len(errs) > 0:
		for _, e := range errs {
			if !errors.Is(e.Err, sync.ErrChanging) {
				t.Errorf("log: reported with %v (op %q), want an error wrapping sync.ErrChanging", e.Err, e.Op)
			}
		}
		if !bytes.Equal(got, initial) || lstat(t, filepath.Join(dst, "log")).Ino != oldIno {
			t.Errorf("log was reported as changing but its previous destination version was not kept (%d bytes)", len(got))
		}
		t.Logf("log reported as changing after %d appended bytes; previous version kept", n)
	default:
		if len(got) < len(initial) || !bytes.Equal(got, final[:min(len(got), len(final))]) {
			t.Errorf("log was copied inconsistently: %d bytes that are not a prefix of the %d bytes the file grew to", len(got), len(final))
		}
		t.Logf("log copied consistently: %d of %d bytes (%d appended during the run)", len(got), len(final), n)
	}
	if n == 0 {
		t.Errorf("nothing was appended during the run: the test proved nothing")
	}
	mirror(t, src, dst, sync.Options{})
}

// passData is size bytes of 4 KiB blocks that each start with the pass number (little endian),
// the rest filled with 'P'.
func passData(size int, pass uint64) []byte {
	b := bytes.Repeat([]byte{'P'}, size)
	for off := 0; off < size; off += 4 * kib {
		binary.LittleEndian.PutUint64(b[off:], pass)
	}
	return b
}

// passSnapshot tells whether b is content that the rewriter (which rewrites the blocks in order,
// pass after pass) really had at some instant: all blocks of one pass, or a prefix of pass n
// followed by a suffix of pass n-1.
func passSnapshot(b []byte, size int) bool {
	if len(b) != size {
		return false
	}
	first := binary.LittleEndian.Uint64(b)
	drop := false
	for off := 0; off < size; off += 4 * kib {
		p := binary.LittleEndian.Uint64(b[off:])
		switch {
		case p == first && !drop:
		case p+1 == first && (drop || off > 0):
			drop = true
		default:
			return false
		}
		if !bytes.Equal(b[off+8:off+4*kib], bytes.Repeat([]byte{'P'}, 4*kib-8)) {
			return false
		}
	}
	return true
}

// TestMirrorChangingSource proves that a file shrunk, or rewritten in place over and over,
// while the mirror copies it ends up either copied consistently (content the file really had at
// one instant) or reported with sync.ErrChanging with its previous destination version kept;
// never torn.
func TestMirrorChangingSource(t *testing.T) {
	parallel(t)
	src := newExt4(t, 128)
	dst := newExt4(t, 128)
	const size = 24 * mib
	initial := passData(size, 0)
	cases := []struct {
		name string
		// change starts changing p once the copy started; it returns when stop is closed.
		change func(t *testing.T, p string, stop <-chan struct{})
		// consistent tells whether got is content the file had at one instant.
		consistent func(got []byte) bool
	}{
		{"truncated during the copy", func(t *testing.T, p string, stop <-chan struct{}) {
			must(t, os.Truncate(p, mib))
			<-stop
		}, func(got []byte) bool { return bytes.Equal(got, initial) || bytes.Equal(got, initial[:mib]) }},
		{"rewritten in place during the copy", func(t *testing.T, p string, stop <-chan struct{}) {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			must(t, err)
			defer f.Close()
			chunk := passData(mib, 0)
			for pass := uint64(1); ; pass++ {
				for off := 0; off < mib; off += 4 * kib {
					binary.LittleEndian.PutUint64(chunk[off:], pass)
				}
				for off := 0; off < size; off += mib {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := f.WriteAt(chunk, int64(off)); err != nil {
						t.Errorf("rewrite: %v", err)
						return
					}
				}
			}
		}, func(got []byte) bool { return passSnapshot(got, size) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, d := filepath.Join(src, c.name), filepath.Join(dst, c.name)
			mkdirs(t, s, d)
			writeFile(t, filepath.Join(s, "f"), []byte("old version"))
			mirror(t, s, d, sync.Options{NoSync: true})
			oldIno := lstat(t, filepath.Join(d, "f")).Ino
			writeFile(t, filepath.Join(s, "f"), initial)

			stop := make(chan struct{})
			changed := make(chan struct{})
			var once gosync.Once
			events := &eventLog{hook: func(p sync.Progress) {
				if p.Phase == sync.PhaseCopy {
					once.Do(func() {
						go func() {
							defer close(changed)
							c.change(t, filepath.Join(s, "f"), stop)
						}()
					})
				}
			}}
			rep, err := runMirror(t, s, d, sync.Options{NoSync: true, Progress: events.record, ProgressInterval: time.Millisecond})
			close(stop)
			once.Do(func() { close(changed) })
			<-changed
			if err != nil {
				t.Fatalf("Mirror did not complete: %v\n%s", err, fmtReport(rep))
			}
			got := readFile(t, filepath.Join(d, "f"))
			if errs := fileErrors(rep, "f"); len(errs) > 0 {
				for _, e := range errs {
					if !errors.Is(e.Err, sync.ErrChanging) {
						t.Errorf("f: reported with %v (op %q), want an error wrapping sync.ErrChanging", e.Err, e.Op)
					}
				}
				if string(got) != "old version" || lstat(t, filepath.Join(d, "f")).Ino != oldIno {
					t.Errorf("f was reported as changing but its previous destination version was not kept (%d bytes)", len(got))
				}
				t.Logf("reported as changing; previous version kept")
			} else if !c.consistent(got) {
				t.Errorf("f was copied torn (%d bytes: content the file never had at one instant) and no error was reported: %s", len(got), describePasses(got))
			} else {
				t.Logf("copied consistently (%d bytes): %s", len(got), describePasses(got))
			}
			for _, e := range rep.Errors {
				if e.Path != "f" {
					t.Errorf("unexpected error: %v", e)
				}
			}
			mirror(t, s, d, sync.Options{NoSync: true})
		})
	}
}

// describePasses summarizes the pass numbers of the blocks of b as runs.
func describePasses(b []byte) string {
	var out []string
	prev, n := uint64(1<<63), 0
	flush := func() {
		if n > 0 {
			out = append(out, fmt.Sprintf("%d×pass %d", n, prev))
		}
	}
	for off := 0; off+8 <= len(b); off += 4 * kib {
		p := binary.LittleEndian.Uint64(b[off:])
		if p != prev {
			flush()
			prev, n = p, 0
		}
		n++
	}
	flush()
	if len(out) > 8 {
		out = append(out[:8], "...")
	}
	return "blocks: " + strings.Join(out, ", ")
}
