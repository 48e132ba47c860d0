//go:build linux

package sysrefresh

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
)

// Plan compares the system partition trees src (the running one) and dst (the backup's) and
// returns what Refresh would do. Only regular files and directories count (FAT has nothing
// else); owners and modes are ignored (FAT has none that matter).
//
// Two regular files are taken as equal when they have the same size, mtimes within
// opts.MtimeTolerance (FAT keeps mtimes to 2 seconds, and Refresh copies the source's), and,
// for files up to opts.ContentLimit, the same content. Large files (the SquashFS images,
// about 1.3 GB) are not read: comparing them byte by byte would read both sticks in full on
// every update, and any two Tails releases give them different sizes and mtimes.
//
// A file system mounted anywhere in dst, or in src where it is compared, is a *MountError.
func Plan(src, dst string, opts Options) (Changes, error) {
	sroot, err := openRoot(src)
	if err != nil {
		return Changes{}, fmt.Errorf("open the running system partition %s: %w", src, err)
	}
	defer unix.Close(sroot)
	droot, err := openRoot(dst)
	if err != nil {
		return Changes{}, fmt.Errorf("open the backup's system partition %s: %w", dst, err)
	}
	defer unix.Close(droot)
	return PlanFDs(sroot, droot, opts)
}

// PlanFDs is Plan on the trees open as the directories src and dst, which the caller opened
// and checked and keeps open: no path is resolved to reach them.
func PlanFDs(src, dst int, opts Options) (Changes, error) {
	sroot, err := reopenRoot(src)
	if err != nil {
		return Changes{}, fmt.Errorf("open the running system partition: %w", err)
	}
	defer unix.Close(sroot)
	droot, err := reopenRoot(dst)
	if err != nil {
		return Changes{}, fmt.Errorf("open the backup's system partition: %w", err)
	}
	defer unix.Close(droot)
	opts = opts.withDefaults()
	// Refresh looks through the whole backup tree, temporaries included, before it plans:
	// so does Plan, so that both refuse the same trees.
	if _, err := scanBackup(droot, "", newPlanner(opts).preserved, opts); err != nil {
		return Changes{}, err
	}
	return plan(sroot, droot, opts)
}

type planner struct {
	opts     Options
	ch       Changes
	data     []FileCopy
	commit   map[string]bool
	preserve map[string]bool
}

func (p *planner) fold(s string) string {
	if p.opts.CaseSensitive {
		return s
	}
	return strings.ToLower(s)
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func newPlanner(opts Options) *planner {
	p := &planner{opts: opts, commit: map[string]bool{}, preserve: map[string]bool{}}
	for _, f := range append(slices.Clone(opts.VersionFiles), opts.IdentityFiles...) {
		p.commit[p.fold(path.Clean(f))] = true
	}
	for _, f := range opts.Preserve {
		p.preserve[p.fold(path.Clean(f))] = true
	}
	// Whatever opts.Preserve says: these belong to one stick and never cross to another.
	for _, f := range tails.PerStickSystemFiles {
		p.preserve[p.fold(f)] = true
	}
	return p
}

// preserved tells whether the entry rel (relative to the root) is never written nor deleted.
func (p *planner) preserved(rel string) bool { return p.preserve[p.fold(rel)] }

func plan(sroot, droot int, opts Options) (Changes, error) {
	p := newPlanner(opts)
	if err := p.walk(sroot, droot, "", ""); err != nil {
		return Changes{}, err
	}
	// Small files in tree order, then large ones by size, LastFile last of all.
	last := p.fold(path.Clean(opts.LastFile))
	rank := func(c FileCopy) int {
		switch {
		case p.fold(c.Path) == last:
			return 2
		case c.Size >= opts.LargeFile:
			return 1
		}
		return 0
	}
	slices.SortStableFunc(p.data, func(a, b FileCopy) int {
		ra, rb := rank(a), rank(b)
		if ra != rb || ra != 1 {
			return cmp.Compare(ra, rb)
		}
		return cmp.Compare(a.Size, b.Size)
	})
	p.ch.Copies = p.data
	for _, c := range append(slices.Clone(p.ch.Copies), p.ch.Commit...) {
		p.ch.Bytes += c.Size
	}
	return p.ch, nil
}

// walk compares the source directory sfd (relative path srel) with the destination
// directory dfd (drel; dfd is -1 when it does not exist yet).
func (p *planner) walk(sfd, dfd int, srel, drel string) error {
	snames, err := readNames(sfd)
	if err != nil {
		return pathErr(false, "read", "/"+srel, err)
	}
	dstByName := map[string]string{}
	var dnames []string
	if dfd >= 0 {
		if dnames, err = readNames(dfd); err != nil {
			return pathErr(true, "read", "/"+drel, err)
		}
		for _, n := range dnames {
			if !strings.HasPrefix(n, TempPrefix) {
				dstByName[p.fold(n)] = n
			}
		}
	}
	matched := map[string]bool{}
	for _, name := range snames {
		sp := join(srel, name)
		var sst unix.Stat_t
		if err := lstatAt(sfd, name, &sst); err != nil {
			return pathErr(false, "stat", sp, err)
		}
		if strings.HasPrefix(name, TempPrefix) || !(isReg(&sst) || isDir(&sst)) {
			p.ch.Skipped = append(p.ch.Skipped, sp)
			continue
		}
		dname, exists := dstByName[p.fold(name)]
		if !exists {
			dname = name
		}
		dp := join(drel, dname)
		matched[dname] = exists
		if p.preserved(sp) {
			continue
		}
		var dst unix.Stat_t
		if exists {
			if err := lstatAt(dfd, dname, &dst); err != nil {
				return pathErr(true, "stat", dp, err)
			}
		}
		if isDir(&sst) {
			if exists && !isDir(&dst) {
				p.ch.Conflicts = append(p.ch.Conflicts, Delete{Path: dp})
				exists = false
			}
			if depthOf(sp) > MaxDepth {
				// The backup's tree was bounded by scanBackup already; the running one is
				// Tails' own, bounded too so that a broken one cannot exhaust the helper.
				return &LimitError{Path: sp, Depth: true}
			}
			if !exists {
				p.ch.Mkdirs = append(p.ch.Mkdirs, dp)
				if err := p.walkNew(sfd, name, sp, dp); err != nil {
					return err
				}
				continue
			}
			if err := p.walkBoth(sfd, dfd, name, dname, sp, dp); err != nil {
				return err
			}
			continue
		}
		c := FileCopy{Path: sp, DstPath: dp, Size: sst.Size, ModTime: mtime(&sst), Reason: "new"}
		switch {
		case exists && isDir(&dst):
			if err := p.checkRemovable(dfd, dname, dp); err != nil {
				return err
			}
			p.ch.Conflicts = append(p.ch.Conflicts, Delete{Path: dp, Dir: true})
			c.Reason = "type"
		case exists && !isReg(&dst):
			c.Reason = "type" // a symlink or special file: the rename replaces it, unfollowed
		case exists:
			reason, err := p.differs(sfd, dfd, name, dname, sp, dp, &sst, &dst)
			if err != nil {
				return err
			}
			if reason == "" {
				continue
			}
			c.Reason, c.OldSize = reason, dst.Size
		}
		if p.commit[p.fold(sp)] {
			p.ch.Commit = append(p.ch.Commit, c)
		} else {
			p.data = append(p.data, c)
		}
	}
	for _, n := range dnames {
		dp := join(drel, n)
		if strings.HasPrefix(n, TempPrefix) || matched[n] || p.preserved(dp) {
			continue
		}
		var st unix.Stat_t
		if err := lstatAt(dfd, n, &st); err != nil {
			return pathErr(true, "stat", dp, err)
		}
		if isDir(&st) {
			if err := p.checkRemovable(dfd, n, dp); err != nil {
				return err
			}
		}
		p.ch.Deletes = append(p.ch.Deletes, Delete{Path: dp, Dir: isDir(&st)})
	}
	return nil
}

// checkRemovable checks that the backup's folder name in dfd (dp), which the refresh is to
// remove with all it holds, has no file system mounted anywhere in it.
func (p *planner) checkRemovable(dfd int, name, dp string) error {
	sub, err := openDirAt(dfd, name)
	if err != nil {
		return pathErr(true, "open", dp, err)
	}
	defer unix.Close(sub)
	_, err = scanBackup(sub, dp, p.preserved, p.opts)
	return err
}

func (p *planner) walkNew(sfd int, name, sp, dp string) error {
	sub, err := openDirAt(sfd, name)
	if err != nil {
		return pathErr(false, "open", sp, err)
	}
	defer unix.Close(sub)
	return p.walk(sub, -1, sp, dp)
}

func (p *planner) walkBoth(sfd, dfd int, name, dname, sp, dp string) error {
	ssub, err := openDirAt(sfd, name)
	if err != nil {
		return pathErr(false, "open", sp, err)
	}
	defer unix.Close(ssub)
	dsub, err := openDirAt(dfd, dname)
	if err != nil {
		return pathErr(true, "open", dp, err)
	}
	defer unix.Close(dsub)
	return p.walk(ssub, dsub, sp, dp)
}

func mtime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Sec, st.Mtim.Nsec) }

// differs returns why two regular files differ, or "" if they are taken as equal.
func (p *planner) differs(sfd, dfd int, name, dname, sp, dp string, sst, dst *unix.Stat_t) (string, error) {
	if sst.Size != dst.Size {
		return "size", nil
	}
	if d := mtime(sst).Sub(mtime(dst)).Abs(); d > p.opts.MtimeTolerance {
		return "mtime", nil
	}
	if sst.Size > p.opts.ContentLimit {
		return "", nil
	}
	a, err := readAt(sfd, name, sst.Size)
	if err != nil {
		return "", pathErr(false, "read", sp, err)
	}
	b, err := readAt(dfd, dname, sst.Size)
	if err != nil {
		return "", pathErr(true, "read", dp, err)
	}
	if !bytes.Equal(a, b) {
		return "content", nil
	}
	return "", nil
}

// readAt reads up to size+1 bytes of the regular file name in dirfd (one more than expected,
// to see a file that grew).
func readAt(dirfd int, name string, size int64) ([]byte, error) {
	fd, _, err := openFileAt(dirfd, name)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	return io.ReadAll(io.LimitReader(fdReader(fd), size+1))
}
