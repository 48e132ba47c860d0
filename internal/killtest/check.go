//go:build linux

package killtest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// Entry is what a kill must leave whole at a path: its type and, for a regular file, the
// SHA-256 of its content, for a symlink its target. Owners, modes, xattrs and times are not
// part of it: a metadata-only change is made in place, and a kill may land between two of its
// calls (chown, chmod, setxattr, utimensat), which docs/sync.md says.
type Entry struct {
	Kind byte   // 'f' regular file, 'd' directory, 'l' symlink, 'o' anything else
	Sum  string // content hash, symlink target, or the type of an 'o'
}

func (e Entry) String() string {
	switch e.Kind {
	case 'f':
		return "file " + e.Sum[:12]
	case 'd':
		return "directory"
	case 'l':
		return "symlink -> " + e.Sum
	}
	return e.Sum
}

// Snapshot maps the paths of a tree, relative to its root (the root aside), to their entries.
type Snapshot map[string]Entry

// Hash describes the tree at root. skip, when set, leaves out the paths it names (and below).
func Hash(t testing.TB, root string, skip func(rel string) bool) Snapshot {
	t.Helper()
	s := Snapshot{}
	buf := make([]byte, 256<<10)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		e, err := entryOf(p, d.Type(), buf)
		if err != nil {
			return err
		}
		s[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("hash %s: %v", root, err)
	}
	return s
}

func entryOf(p string, typ fs.FileMode, buf []byte) (Entry, error) {
	switch {
	case typ.IsDir():
		return Entry{Kind: 'd'}, nil
	case typ.IsRegular():
		// Read with pread(2) from x/sys/unix, which the race detector does not instrument:
		// os.File.Read has it check every byte read, which made hashing the trees the
		// longest part of a campaign under -race.
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return Entry{}, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		defer unix.Close(fd)
		h := sha256.New()
		for off := int64(0); ; {
			n, err := unix.Pread(fd, buf, off)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return Entry{}, &fs.PathError{Op: "read", Path: p, Err: err}
			}
			if n == 0 {
				break
			}
			h.Write(buf[:n])
			off += int64(n)
		}
		return Entry{Kind: 'f', Sum: hex.EncodeToString(h.Sum(nil))}, nil
	case typ&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return Entry{}, err
		}
		return Entry{Kind: 'l', Sum: target}, nil
	}
	return Entry{Kind: 'o', Sum: typ.Type().String()}, nil
}

// Result is what Check found in one tree.
type Result struct {
	// Entries is the number of entries checked.
	Entries int
	// Torn lists the entries that are neither their old nor their new version, and the paths
	// that both versions have, of one type, but the tree lacks (a rename over the old version
	// never leaves the name empty).
	Torn []string
	// Temporaries lists the leftover temporaries of the copy.
	Temporaries []string
	// AllOld and AllNew say that the tree's entries are exactly the old ones, or the new ones
	// (temporaries aside: a kill while the helper wrote its marker leaves the marker's).
	AllOld, AllNew bool
}

// Check checks that every entry of the tree at root is its old or its new version. isTemp
// tells a temporary of the copy by its name (it is listed, not checked); skip as for Hash.
func Check(t testing.TB, root string, old, new Snapshot, isTemp func(name string) bool, skip func(rel string) bool) Result {
	t.Helper()
	var r Result
	seen := map[string]bool{}
	r.AllOld, r.AllNew = true, true
	buf := make([]byte, 256<<10)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if isTemp(d.Name()) {
			r.Temporaries = append(r.Temporaries, rel)
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		e, err := entryOf(p, d.Type(), buf)
		if err != nil {
			return err
		}
		r.Entries++
		seen[rel] = true
		o, inOld := old[rel]
		n, inNew := new[rel]
		isOld, isNew := inOld && o == e, inNew && n == e
		if !isOld {
			r.AllOld = false
		}
		if !isNew {
			r.AllNew = false
		}
		if !isOld && !isNew {
			r.Torn = append(r.Torn, fmt.Sprintf("%s: %s, neither its old version (%s) nor its new one (%s)", rel, e, describe(o, inOld), describe(n, inNew)))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("check %s: %v", root, err)
	}
	for rel, o := range old {
		if !seen[rel] {
			r.AllOld = false
			if n, ok := new[rel]; ok && n.Kind == o.Kind {
				r.Torn = append(r.Torn, fmt.Sprintf("%s: missing, but %s before and %s after", rel, o, n))
			}
		}
	}
	for rel := range new {
		if !seen[rel] {
			r.AllNew = false
		}
	}
	slices.Sort(r.Torn)
	return r
}

func describe(e Entry, ok bool) string {
	if !ok {
		return "none"
	}
	return e.String()
}
