package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"tails-backup/e2e/proto"
)

// A manifest is what a Persistent Storage holds, path by path: the type of each entry and, for
// a regular file, the sha256 of its content, for a symbolic link its target. Two manifests of
// the source, taken before and after a week of changes, tell whether a backup interrupted in
// the middle of an update holds each file either as it was or as it is now ("old or new"),
// never a torn mix (a file half written, or of another content).

// Entry is one path of a manifest.
type Entry struct {
	Type   string `json:"t"`           // file, dir, symlink, other
	Sha256 string `json:"h,omitempty"` // file
	Target string `json:"l,omitempty"` // symlink
	Size   int64  `json:"n,omitempty"` // file
}

// manifestSkip is what an update leaves alone on the backup (tails.MirrorExcludes): the
// marker, this Tails' own tails-backup folder, its tails-backup-keys folder (the keys that
// open its backups, which never reach a backup), and the helper's xattr cache on the backup
// (tails-backup-cache); none is compared.
var manifestSkip = map[string]bool{".tails-backup.json": true, "tails-backup": true, "tails-backup-keys": true, "tails-backup-cache": true}

// tmpRe is the name of the mirror engine's temporaries (sync/mirror.go tmpName, and
// sync/resume.go partialName for a large file's, which the next update resumes): a copy in
// flight when the stick was pulled may leave one behind, which is not a file of the user.
var tmpRe = regexp.MustCompile(`^\.tails-backup-(\d+-[0-9a-f]+-\d+|part-[0-9a-f]{32})\.tmp$`)

// manifestOf hashes the tree at root.
func manifestOf(ctx context.Context, root string) (map[string]Entry, error) {
	m := map[string]Entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if !strings.Contains(rel, "/") && manifestSkip[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var e Entry
		switch t := d.Type(); {
		case t.IsDir():
			e.Type = "dir"
		case t&fs.ModeSymlink != 0:
			e.Type = "symlink"
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		case t.IsRegular():
			e.Type = "file"
			if e.Sha256, e.Size, err = hashFile(p); err != nil {
				return err
			}
		default:
			e.Type = "other"
		}
		m[rel] = e
		return nil
	})
	return m, err
}

// hashFile hashes the content of the file at p, and returns its size. The hash is the sha256 of
// the file's non-zero 4 KiB blocks, each after its offset, then of its size: the same for the
// same content whether its zeros are holes or written (the engine keeps holes; a copy by
// another tool may not), and it reads the data only, so that the 1 GiB sparse disk image of the
// Persistent Folder costs its 3 MiB, not 1 GiB of zeros to hash in an emulated CPU.
func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	size := fi.Size()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var offBuf [8]byte
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole after off
		}
		if err != nil {
			return "", 0, fmt.Errorf("seek data in %s: %w", p, err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return "", 0, fmt.Errorf("seek a hole in %s: %w", p, err)
		}
		hole = min(hole, size)
		// Holes start and end on blocks of the file system (4 KiB on these ext4).
		data &^= 4095
		for pos := data; pos < hole; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-pos)], pos)
			if n == 0 && err != nil {
				return "", 0, fmt.Errorf("read %s: %w", p, err)
			}
			for b := 0; b < n; b += 4096 {
				blk := buf[b:min(b+4096, n)]
				if isZero(blk) {
					continue
				}
				binary.LittleEndian.PutUint64(offBuf[:], uint64(pos)+uint64(b))
				h.Write(offBuf[:])
				h.Write(blk)
			}
			pos += int64(n)
		}
		off = hole
	}
	binary.LittleEndian.PutUint64(offBuf[:], uint64(size))
	h.Write(offBuf[:])
	return hex.EncodeToString(h.Sum(nil)), size, nil
}

var zeroBlock = make([]byte, 4096)

func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }

// manifestCmd writes the manifest of ROOT to FILE.
//
//	manifest --out FILE ROOT
func manifestCmd(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("manifest", flag.ContinueOnError)
	out := fset.String("out", "", "write the manifest to this file")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 1 || *out == "" {
		return errors.New("usage: manifest --out FILE ROOT")
	}
	m, err := manifestOf(ctx, fset.Arg(0))
	if err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	files := 0
	for _, e := range m {
		if e.Type == "file" {
			files++
		}
	}
	fmt.Printf("%d entries, %d files\n", len(m), files)
	return os.WriteFile(*out, b, 0o600)
}

// checkTree compares the tree at root with old and new.
func checkTree(ctx context.Context, root string, old, new map[string]Entry) (proto.TreeCheck, error) {
	var c proto.TreeCheck
	got, err := manifestOf(ctx, root)
	if err != nil {
		return c, err
	}
	c.Complete = len(got) == len(new)
	for p, e := range got {
		c.Entries++
		if e.Type == "file" {
			c.Files++
		}
		o, inOld := old[p]
		n, inNew := new[p]
		switch {
		case inOld && inNew && o == n && e == o:
			c.Unchanged++
		case inNew && e == n:
			c.New++
		case inOld && e == o:
			c.Old++
			c.Complete = false
		case tmpRe.MatchString(filepath.Base(p)):
			c.Temps = append(c.Temps, p)
			c.Complete = false
		case !inOld && !inNew:
			c.Extra = append(c.Extra, p)
			c.Complete = false
		default:
			c.Torn = append(c.Torn, p)
			c.TornWhat = append(c.TornWhat, fmt.Sprintf("%s: %s %d bytes %.12s, old %s %d %.12s, new %s %d %.12s", p,
				e.Type, e.Size, e.Sha256, o.Type, o.Size, o.Sha256, n.Type, n.Size, n.Sha256))
			c.Complete = false
		}
		if !inNew || e != n {
			c.Complete = false
		}
	}
	for p := range new {
		if _, ok := got[p]; ok {
			continue
		}
		c.Complete = false
		if _, inOld := old[p]; inOld {
			c.Missing = append(c.Missing, p)
		}
	}
	for _, l := range [][]string{c.Torn, c.TornWhat, c.Missing, c.Extra, c.Temps} {
		sort.Strings(l)
	}
	var mk struct {
		State string `json:"state"`
	}
	if b, err := os.ReadFile(filepath.Join(root, ".tails-backup.json")); err == nil && json.Unmarshal(b, &mk) == nil {
		c.Marker = mk.State
	}
	return c, nil
}

func readManifest(p string) (map[string]Entry, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	m := map[string]Entry{}
	return m, json.Unmarshal(b, &m)
}

// checkTreeCmd prints, as JSON, the TreeCheck of ROOT against the manifests OLD and NEW.
//
//	check-tree --old OLD --new NEW ROOT
func checkTreeCmd(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("check-tree", flag.ContinueOnError)
	oldP := fset.String("old", "", "manifest of the source before the changes")
	newP := fset.String("new", "", "manifest of the source after the changes")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 1 || *oldP == "" || *newP == "" {
		return errors.New("usage: check-tree --old OLD --new NEW ROOT")
	}
	old, err := readManifest(*oldP)
	if err != nil {
		return err
	}
	new, err := readManifest(*newP)
	if err != nil {
		return err
	}
	c, err := checkTree(ctx, fset.Arg(0), old, new)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(c)
}
