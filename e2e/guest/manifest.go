package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
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

// manifestSkip is what an update leaves alone on the backup (helper/ops.go mirrorExcludes):
// the marker and this Tails' own tails-backup folder; neither is compared.
var manifestSkip = map[string]bool{".tails-backup.json": true, "tails-backup": true}

// tmpRe is the name of the mirror engine's temporaries (sync/mirror.go tmpName): a copy in
// flight when the stick was pulled may leave one behind, which is not a file of the user.
var tmpRe = regexp.MustCompile(`^\.tails-backup-\d+-[0-9a-f]+-\d+\.tmp$`)

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

func hashFile(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

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

// TreeCheck is what check-tree found on a backup, against the source's manifests before (old)
// and after (new) the changes.
type TreeCheck struct {
	Entries   int      `json:"entries"`   // entries of the backup compared
	Files     int      `json:"files"`     // regular files among them
	Unchanged int      `json:"unchanged"` // the same in old and new, and so on the backup
	Old       int      `json:"old"`       // changed by the week, still old on the backup
	New       int      `json:"new"`       // changed by the week, already new on the backup
	Torn      []string `json:"torn"`      // neither old nor new: the failure this check is for
	TornWhat  []string `json:"torn_what"` // what each torn entry is, and was before and after
	Missing   []string `json:"missing"`   // in old and in new, not on the backup: lost
	Extra     []string `json:"extra"`     // on the backup, in neither old nor new
	Temps     []string `json:"temps"`     // temporaries of the engine left behind
	Marker    string   `json:"marker"`    // state in the backup's marker, "" if unreadable
	Complete  bool     `json:"complete"`  // the backup equals new exactly
}

// checkTree compares the tree at root with old and new.
func checkTree(ctx context.Context, root string, old, new map[string]Entry) (TreeCheck, error) {
	var c TreeCheck
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
