//go:build linux

package sync

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
)

// Mirror makes the directory dst an exact copy of the directory src and reports what it did.
// It opens the two paths (following symlinks, as a command line does) and calls MirrorFDs on
// them; a caller that checked its roots holds their descriptors and calls MirrorFDs itself,
// so that nothing is resolved twice.
//
// The error is MirrorFDs', or says why a path cannot be opened as a directory.
func Mirror(ctx context.Context, src, dst string, opts Options) (Report, error) {
	srcFD, err := openRoot(src, "source")
	if err != nil {
		return Report{}, err
	}
	defer unix.Close(srcFD)
	dstFD, err := openRoot(dst, "destination")
	if err != nil {
		return Report{}, err
	}
	defer unix.Close(dstFD)
	return mirrorFDs(ctx, root{srcFD, src}, root{dstFD, dst}, opts)
}

// MirrorFDs makes the directory open as dstDir an exact copy of the directory open as srcDir
// and reports what it did.
//
// The caller owns the two descriptors, opened and checked (which device, which mount) before:
// MirrorFDs neither closes them nor moves their offsets or locks, and resolves no path to reach
// them, so a rename, unmount or mount at their paths since does not change what is mirrored.
// The run opens each root again as "." beneath its descriptor (a new open file description of
// the same directory) and closes those before returning. It refuses, before anything is
// written: a descriptor that is not a directory, an O_PATH descriptor (its directory cannot be
// listed through it), the same directory twice, and one root inside the other (mirroring would
// copy the destination into itself or delete the source).
//
// It first scans both trees to compute what must change (DryRun stops there), checks that the
// destination has room, then applies the changes and flushes the destination file system.
// The error is nil when the run completed, even if some files could not be copied: those are
// listed in Report.Errors. It is a *NoSpaceError when the destination is too small, wraps
// ctx.Err() when the context ended the run, and otherwise says why the run could not go on.
// In every case each destination file is its old or its new version and no temporary is left,
// except, when ctx ended the run, the resumable temporaries of large files (resume.go), which
// the next run resumes or deletes.
func MirrorFDs(ctx context.Context, srcDir, dstDir int, opts Options) (Report, error) {
	return mirrorFDs(ctx, root{srcDir, ""}, root{dstDir, ""}, opts)
}

// root is a root directory given to a run: its descriptor and, for messages, the path it was
// opened at ("" when the caller gave only the descriptor).
type root struct {
	fd   int
	path string
}

// describe names the root in a message: "source /a" or "source".
func (r root) describe(what string) string {
	if r.path == "" {
		return what
	}
	return what + " " + r.path
}

func mirrorFDs(ctx context.Context, src, dst root, opts Options) (Report, error) {
	start := time.Now()
	r, err := newRunner(ctx, src, dst, opts)
	if err != nil {
		return Report{}, err
	}
	defer r.close()

	stopProgress := r.startProgress()
	rep, err := r.run()
	rep.Duration = time.Since(start)
	stopProgress()
	if opts.xattrPath != nil {
		opts.xattrPath(r.noXattrAt.Load())
	}
	return rep, err
}

// runner holds the state of one Mirror call.
type runner struct {
	opts      Options
	log       *logrus.Entry
	parent    context.Context
	ctx       context.Context // ends on the parent's end or on a fatal error
	cancel    context.CancelFunc
	srcRoot   int
	dstRoot   int
	srcDev    uint64
	dstDev    uint64
	exclude   map[string]bool
	sem       chan struct{}
	lim       limits
	names     beneath.Budget
	links     linkTable
	plan      plan // what the scan found to change
	tmpStem   string
	tmpSeq    atomic.Uint64
	noXattrAt atomic.Bool  // the kernel has no listxattrat/getxattrat
	changeMu  gosync.Mutex // serialises Options.OnChange
	copyBufs  gosync.Pool
	// spaceMu is held shared by every copy and exclusively by a copy retried alone after ENOSPC.
	spaceMu  gosync.RWMutex
	nameBufs gosync.Pool
	commit   *barrier // renames wait there until their data is on the device

	fatal atomic.Pointer[error] // the first error that ended the run

	claimMu gosync.Mutex
	claimed map[string]bool // resumable temporaries used by this run, by directory (resume.go)

	// counters of the current phase
	created, updated, metaOnly, deleted, bytesCopied, scanned atomic.Int64
	bytesResumed, bytesCompared                               atomic.Int64
	// bytesChecked is what the copy kept of resumable temporaries so far, read back and found
	// equal to the source: done, in the progress, without being copied.
	bytesChecked                     atomic.Int64
	needBytes, freedBytes, copyBytes atomic.Int64
	phase                            atomic.Value // Phase
	filesTotal, bytesTotal           atomic.Int64
	curPath                          atomic.Pointer[string]

	errMu    gosync.Mutex
	errs     []FileError
	errSeen  map[string]bool
	errCount int64
}

const (
	copyBufSize    = 256 << 10
	defaultWorkers = 4
	maxWorkers     = 16 // bounds the copy buffers, and so memory, on machines with many cores
)

const (
	// defaultMaxDepth: a run holds two descriptors per level on each worker's path, so depth
	// bounds the descriptors (see fitWorkers). No real Persistent Storage comes near: Tails'
	// paths are a few levels deep, and at 256 levels of 16-byte names a path passes PATH_MAX
	// (4096 bytes), where most tools (rsync among them) fail anyway.
	defaultMaxDepth = 256
	// defaultNameBytes: 16 MiB of names is some 300,000 entries of 24-byte names in one
	// listing, while the largest real folders (APT lists, Thunderbird's ImapMail) hold tens of
	// thousands. One listing past it stops the run, whatever else is going on; all the
	// listings held at once may take sharedNameFactor times as much, so that two or three big
	// folders worked on at the same time do not stop a real Persistent Storage.
	defaultNameBytes = 16 << 20
	sharedNameFactor = 4
	// defaultLinkGroups: each group costs about 150 bytes (its map entry, a mutex, the paths of
	// its seed and target), so 65,536 groups take some 10 MiB (measured by
	// TestMirrorLimitLinksMemory); a real Persistent Storage holds few hard links.
	defaultLinkGroups = 1 << 16
)

func (l limits) withDefaults() limits {
	if l.depth <= 0 {
		l.depth = defaultMaxDepth
	}
	if l.nameBytes <= 0 {
		l.nameBytes = defaultNameBytes
	}
	if l.linkGroups <= 0 {
		l.linkGroups = defaultLinkGroups
	}
	return l
}

func newRunner(ctx context.Context, src, dst root, opts Options) (*runner, error) {
	log := opts.Log
	if log == nil {
		l := logrus.New()
		l.Out = discard{}
		log = logrus.NewEntry(l)
	}
	lim := opts.limits.withDefaults()
	workers := opts.Workers
	if workers <= 0 {
		workers = min(maxWorkers, max(defaultWorkers, 4*runtime.GOMAXPROCS(0)))
	}
	heldDirs := barrierOps
	var nofile unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile) == nil {
		workers = fitWorkers(workers, lim.depth, nofile.Cur)
		heldDirs = heldDirBudget(workers, lim.depth, nofile.Cur)
	}
	r := &runner{
		opts:    opts,
		lim:     lim,
		log:     log,
		parent:  ctx,
		exclude: make(map[string]bool),
		sem:     make(chan struct{}, workers-1),
		errSeen: make(map[string]bool),
		claimed: make(map[string]bool),
		tmpStem: fmt.Sprintf(".tails-backup-%d-%x", os.Getpid(), time.Now().UnixNano()&0xffffff),
	}
	r.commit = newBarrier(r, heldDirs)
	r.noXattrAt.Store(opts.procXattrs)
	r.names.PerList, r.names.Limit = lim.nameBytes, sharedNameFactor*lim.nameBytes
	r.links.groups = make(map[linkKey]*linkGroup)
	r.links.limit = lim.linkGroups
	r.plan.dirs = make(map[string][]step)
	r.copyBufs.New = func() any { b := make([]byte, copyBufSize); return &b }
	r.nameBufs.New = func() any { b := make([]byte, 32<<10); return &b }
	for _, e := range opts.Exclude {
		e = strings.Trim(filepath.Clean("/"+e), "/")
		if e == "" {
			return nil, fmt.Errorf("exclude %q: the root itself cannot be excluded; name a path inside it", e)
		}
		r.exclude[e] = true
	}
	r.phase.Store(PhaseScan)
	r.ctx, r.cancel = context.WithCancel(ctx)

	var err error
	if r.srcRoot, err = reopenRoot(src, "source"); err != nil {
		r.cancel()
		return nil, err
	}
	if r.dstRoot, err = reopenRoot(dst, "destination"); err != nil {
		unix.Close(r.srcRoot)
		r.cancel()
		return nil, err
	}
	if err := checkRoots(r.srcRoot, r.dstRoot, src, dst); err != nil {
		r.close()
		return nil, err
	}
	var s, d unix.Stat_t
	if err := fstat(r.srcRoot, &s); err != nil {
		r.close()
		return nil, fmt.Errorf("%s: %w", src.describe("source"), err)
	}
	if err := fstat(r.dstRoot, &d); err != nil {
		r.close()
		return nil, fmt.Errorf("%s: %w", dst.describe("destination"), err)
	}
	r.srcDev, r.dstDev = s.Dev, d.Dev
	return r, nil
}

// fitWorkers lowers the number of workers so that the descriptors they may hold fit the limit
// nofile (RLIMIT_NOFILE): each worker walks its own path of at most depth folders and holds two
// descriptors per level (the source and destination folders), plus up to four for the entry it
// copies; the roots, the standard files and the runtime take a few more. sudo hands the helper
// its caller's limits; Go raises the soft limit to the hard one at start, so what is left is
// what the system allows. Below one worker's need, a folder that cannot be opened is reported
// like any unreadable folder.
func fitWorkers(workers, depth int, nofile uint64) int {
	const reserve = 64
	per := uint64(2*depth + 4)
	if nofile < reserve+per {
		return 1
	}
	return int(min(uint64(workers), (nofile-reserve)/per))
}

// overLimit ends the run: the entry rel of the source, or of the destination, goes beyond the
// bound what.
func (r *runner) overLimit(rel string, what Limit, inDestination bool) {
	if rel == "" {
		rel = "."
	}
	var limit int64
	switch what {
	case LimitDepth:
		limit = int64(r.lim.depth)
	case LimitNames:
		limit = r.lim.nameBytes
	case LimitLinks:
		limit = int64(r.lim.linkGroups)
	}
	r.setFatal(&LimitError{Path: rel, What: what, Limit: limit, InDestination: inDestination})
}

// tooDeep tells whether the folder rel is nested deeper than the bound, and then ends the run.
func (r *runner) tooDeep(rel string, inDestination bool) bool {
	if strings.Count(rel, "/")+1 <= r.lim.depth {
		return false
	}
	r.overLimit(rel, LimitDepth, inDestination)
	return true
}

// checkRoots refuses roots where one contains the other, the run's own descriptors srcFD and
// dstFD of src and dst: mirroring would copy the destination into itself or delete the source.
// It compares inodes and walks up the ".." of each root (beneath.Inside), never a path.
func checkRoots(srcFD, dstFD int, src, dst root) error {
	var s, d unix.Stat_t
	if err := fstat(srcFD, &s); err != nil {
		return fmt.Errorf("%s: %w", src.describe("source"), err)
	}
	if err := fstat(dstFD, &d); err != nil {
		return fmt.Errorf("%s: %w", dst.describe("destination"), err)
	}
	if sameInode(&s, &d) {
		if src.path != "" {
			return fmt.Errorf("source and destination are the same directory (%s); give two different directories", src.path)
		}
		return errors.New("source and destination are the same directory; give two different directories")
	}
	in, err := beneath.Inside(srcFD, dstFD)
	if err != nil {
		return fmt.Errorf("check whether the %s is inside the %s: %w", dst.describe("destination"), src.describe("source"), err)
	}
	if in {
		return fmt.Errorf("the %s is inside the %s; put it elsewhere", dst.describe("destination"), src.describe("source"))
	}
	if in, err = beneath.Inside(dstFD, srcFD); err != nil {
		return fmt.Errorf("check whether the %s is inside the %s: %w", src.describe("source"), dst.describe("destination"), err)
	}
	if in {
		return fmt.Errorf("the %s is inside the %s, which would delete it; put it elsewhere", src.describe("source"), dst.describe("destination"))
	}
	return nil
}

// openRoot opens the directory at path for Mirror.
func openRoot(path, what string) (int, error) {
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, &RootError{Root: what, Path: path, Err: err}
	}
	return fd, nil
}

// reopenRoot opens the run's own descriptor of the root r: "." beneath r.fd, a new open file
// description of the same directory, so that the run's reads and seeks leave the caller's
// descriptor as it is. It refuses an O_PATH descriptor and anything but a directory.
func reopenRoot(r root, what string) (int, error) {
	flags, err := unix.FcntlInt(uintptr(r.fd), unix.F_GETFL, 0)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", r.describe(what), err)
	}
	if flags&unix.O_PATH != 0 {
		return -1, fmt.Errorf("the %s is open as O_PATH, which cannot list it; open it for reading", r.describe(what))
	}
	fd, err := beneath.Open(r.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	switch {
	case err == unix.ENOTDIR:
		return -1, fmt.Errorf("the %s is not a directory; give a directory", r.describe(what))
	case err != nil:
		return -1, fmt.Errorf("open the %s: %w", r.describe(what), err)
	}
	return fd, nil
}

func (r *runner) close() {
	r.cancel()
	unix.Close(r.srcRoot)
	unix.Close(r.dstRoot)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// run does the scan and, unless it is a dry run or nothing differs, the copy.
func (r *runner) run() (Report, error) {
	start := time.Now()
	r.scanRoot()
	plan := r.report()
	plan.ScanTime = time.Since(start)
	plan.BytesCopied = r.copyBytes.Load() // what the copy would write
	if err := r.endError(); err != nil {
		return plan, err
	}
	if r.opts.DryRun {
		return plan, nil
	}
	if plan.Changes() == 0 {
		// Nothing to copy, but the cache may have learnt entries (the first update after a
		// full copy reads every xattr): saved, and flushed like a copy's changes.
		if r.saveCache(&plan) && !r.opts.NoSync {
			flushStart := time.Now()
			err := unix.Syncfs(r.dstRoot)
			plan.FlushTime = time.Since(flushStart)
			if err != nil {
				return plan, fmt.Errorf("flush the destination: %w", err)
			}
		}
		return plan, nil
	}
	if err := r.checkSpace(); err != nil {
		return plan, err
	}

	r.filesTotal.Store(plan.Changes())
	r.bytesTotal.Store(r.copyBytes.Load())
	for _, c := range []*atomic.Int64{&r.created, &r.updated, &r.metaOnly, &r.deleted, &r.bytesCopied} {
		c.Store(0)
	}
	r.phase.Store(PhaseCopy)
	copyStart := time.Now()
	r.applyRoot()
	r.commit.finish()
	rep := r.report()
	rep.Scanned, rep.ScanTime, rep.CopyTime = plan.Scanned, plan.ScanTime, time.Since(copyStart)
	if err := r.endError(); err != nil {
		return rep, err
	}
	r.saveCache(&rep)
	if !r.opts.NoSync {
		flushStart := time.Now()
		err := unix.Syncfs(r.dstRoot)
		rep.FlushTime = time.Since(flushStart)
		if err != nil {
			return rep, fmt.Errorf("flush the destination: %w", err)
		}
	}
	return rep, nil
}

// saveCache saves Options.XattrCache at the end of a run that completed, before its final
// syncfs, which flushes it with the rest (XattrCache.save says why that is enough). A failure
// only costs the next run time: it goes to rep, not to the run's error. It reports whether it
// wrote the cache.
func (r *runner) saveCache(rep *Report) bool {
	c := r.xattrCache()
	if c == nil {
		return false
	}
	wrote, err := c.save()
	rep.XattrCacheErr = err
	return wrote
}

// endError is the reason the current phase stopped early, if it did.
func (r *runner) endError() error {
	if err := r.fatal.Load(); err != nil {
		return *err
	}
	if err := r.parent.Err(); err != nil {
		return fmt.Errorf("mirror stopped: %w", err)
	}
	return nil
}

func (r *runner) report() Report {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return Report{
		Created:       r.created.Load(),
		Updated:       r.updated.Load(),
		MetadataOnly:  r.metaOnly.Load(),
		Deleted:       r.deleted.Load(),
		BytesCopied:   r.bytesCopied.Load(),
		BytesResumed:  r.bytesResumed.Load(),
		BytesCompared: r.bytesCompared.Load(),
		Scanned:       r.scanned.Load(),
		Errors:        append([]FileError(nil), r.errs...),
		ErrorCount:    r.errCount,
	}
}

// checkSpace compares what the scan found to copy with the free space of the destination.
// Replaced files are freed only after their new version is written, so this is a lower bound;
// running out later is handled where a write fails.
func (r *runner) checkSpace() error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(r.dstRoot, &fs); err != nil {
		return fmt.Errorf("free space of the destination: %w", err)
	}
	avail := int64(fs.Bavail) * fs.Bsize
	need := r.needBytes.Load() - r.freedBytes.Load()
	if need > avail {
		return &NoSpaceError{Needed: need, Available: avail}
	}
	return nil
}

// setFatal records the first error that ends the run and stops the other workers.
func (r *runner) setFatal(err error) {
	if r.fatal.CompareAndSwap(nil, &err) {
		r.cancel()
	}
}

func (r *runner) noSpace() {
	var fs unix.Statfs_t
	var avail int64
	if unix.Fstatfs(r.dstRoot, &fs) == nil {
		avail = int64(fs.Bavail) * fs.Bsize
	}
	need := r.bytesTotal.Load() - r.bytesCopied.Load() - r.bytesChecked.Load()
	if need <= avail {
		need = avail + 1
	}
	r.setFatal(&NoSpaceError{Needed: need, Available: avail, During: true})
}

// fail routes an error about rel: space and device failures end the run, cancellation is not
// a file's fault, anything else is reported for that file and the run goes on.
func (r *runner) fail(rel, op string, err error) {
	switch {
	case r.ctx.Err() != nil && (errors.Is(err, context.Canceled) || r.fatal.Load() != nil):
	case isNoSpace(err):
		r.noSpace()
	case isDeviceFailure(err):
		r.setFatal(fmt.Errorf("the destination failed while writing %s (%w); check that the device is still plugged in and run again", rel, err))
	default:
		r.fileError(rel, op, err)
	}
}

func (r *runner) fileError(rel, op string, err error) {
	key := op + "\x00" + rel
	r.errMu.Lock()
	defer r.errMu.Unlock()
	if r.errSeen[key] {
		return
	}
	if len(r.errSeen) < MaxReportedErrors {
		r.errSeen[key] = true
	}
	r.errCount++
	if len(r.errs) < MaxReportedErrors {
		r.errs = append(r.errs, FileError{Path: rel, Op: op, Err: err})
	}
	r.log.WithFields(logrus.Fields{"path": rel, "op": op}).WithError(err).Warn("skipped")
}

func (r *runner) vanished(rel string) { r.fileError(rel, "vanished", ErrVanished) }

// changed reports a difference found by the scan to Options.OnChange; st is the entry's
// status (the source's, the destination's for a deletion).
func (r *runner) changed(rel string, kind ChangeKind, st *unix.Stat_t, what ...string) {
	if r.opts.OnChange == nil {
		return
	}
	r.reportChange(Change{Path: rel, Kind: kind, What: what, Dir: isDir(st), Type: typeLetter(st)})
}

// reportChange hands c to Options.OnChange, one call at a time.
func (r *runner) reportChange(c Change) {
	if c.Path == "" {
		c.Path = "."
	}
	r.changeMu.Lock()
	defer r.changeMu.Unlock()
	r.opts.OnChange(c)
}

// typeLetter is the rsync -i letter of st's file type.
func typeLetter(st *unix.Stat_t) byte {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return 'f'
	case unix.S_IFDIR:
		return 'd'
	case unix.S_IFLNK:
		return 'L'
	case unix.S_IFCHR, unix.S_IFBLK:
		return 'D'
	}
	return 'S'
}

// statDifferences names the attributes of s and d that differ, xattrs aside.
func statDifferences(s, d *unix.Stat_t) []string {
	var what []string
	if s.Size != d.Size && !isDir(s) {
		what = append(what, "size")
	}
	what = append(what, metaDifferences(s, d, nil, nil)...)
	return what
}

// metaDifferences names what metaDiffers found.
func metaDifferences(s, d *unix.Stat_t, srcX, dstX []xattr) []string {
	var what []string
	if s.Uid != d.Uid {
		what = append(what, "owner")
	}
	if s.Gid != d.Gid {
		what = append(what, "group")
	}
	if !isSymlink(s) && s.Mode&0o7777 != d.Mode&0o7777 {
		what = append(what, "mode")
	}
	if s.Mtim != d.Mtim {
		what = append(what, "mtime")
	}
	if !xattrsEqual(srcX, dstX) {
		what = append(what, "xattrs")
	}
	return what
}

func (r *runner) excluded(rel string) bool { return len(r.exclude) > 0 && r.exclude[rel] }

func (r *runner) tmpName() string {
	return fmt.Sprintf("%s-%d.tmp", r.tmpStem, r.tmpSeq.Add(1))
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

func baseRel(rel string) string {
	return rel[strings.LastIndexByte(rel, '/')+1:]
}

func parentRel(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// spawn runs fn on a new goroutine when a worker slot is free and inline otherwise, so the
// number of goroutines stays bounded and a parent waiting for its children never deadlocks.
func (r *runner) spawn(wg *gosync.WaitGroup, fn func()) {
	select {
	case r.sem <- struct{}{}:
		wg.Add(1)
		go func() {
			defer func() { <-r.sem; wg.Done() }()
			fn()
		}()
	default:
		fn()
	}
}

func (r *runner) counted(c *atomic.Int64, rel string) {
	c.Add(1)
	r.curPath.Store(&rel)
}

// sanitize makes the source entry's metadata safe when the source is untrusted: no setuid or
// setgid bit outside directories.
func (r *runner) sanitize(s *unix.Stat_t) {
	if r.opts.UntrustedSource && !isDir(s) {
		s.Mode &^= unix.S_ISUID | unix.S_ISGID
	}
}

// srcXattrs keeps, when the source is untrusted, only the xattrs that grant nothing: user.*
// and the POSIX ACLs.
func (r *runner) srcXattrs(x []xattr, err error) ([]xattr, error) {
	if err != nil || !r.opts.UntrustedSource {
		return x, err
	}
	return slices.DeleteFunc(x, func(a xattr) bool {
		return !strings.HasPrefix(a.name, "user.") && a.name != "system.posix_acl_access" && a.name != "system.posix_acl_default"
	}), nil
}

// metaDiffers tells whether the destination entry's owner, mode, mtime or xattrs differ.
func metaDiffers(s, d *unix.Stat_t, srcX, dstX []xattr) bool {
	return s.Uid != d.Uid || s.Gid != d.Gid ||
		(!isSymlink(s) && s.Mode&0o7777 != d.Mode&0o7777) ||
		s.Mtim != d.Mtim || !xattrsEqual(srcX, dstX)
}

// applyMeta gives the inode open as fd (O_PATH or not) the owner, xattrs, mode and mtime of s.
// have is its current xattrs; for a new inode they are read here, since it may have inherited
// the default ACL of its directory. The order matters: chown clears the setuid/setgid bits and
// security.capability, and setting an ACL rewrites the group bits. What the inode has already
// is not set again: most of a run's temporaries are created with their mode (0600), and a
// folder whose entries were renamed needs only its mtime; each call saved is a journal update.
func applyMeta(fd int, s *unix.Stat_t, want, have []xattr, isNew bool) error {
	var cur unix.Stat_t
	if err := fstat(fd, &cur); err != nil {
		return err
	}
	return applyMetaOf(fd, &cur, s, want, have, isNew)
}

// applyMetaOf is applyMeta for a caller that took the inode's state cur (fstat) itself.
func applyMetaOf(fd int, cur, s *unix.Stat_t, want, have []xattr, isNew bool) error {
	n := newInode(fd)
	if isNew {
		var err error
		if have, err = n.xattrs(); err != nil {
			return err
		}
	}
	changed := false
	if cur.Uid != s.Uid || cur.Gid != s.Gid {
		if err := unix.Fchownat(fd, "", int(s.Uid), int(s.Gid), unix.AT_EMPTY_PATH); err != nil {
			return &opError{op: "chown", err: err}
		}
		changed = true
		// chown may remove security.capability; it adds nothing, so a new inode that had no
		// xattrs a moment ago has none now.
		if !isNew || len(have) > 0 {
			var err error
			if have, err = n.xattrs(); err != nil {
				return err
			}
		}
	}
	wrote, err := writeXattrs(n, want, have)
	if err != nil {
		return err
	}
	changed = changed || wrote
	if !isSymlink(s) && (changed || cur.Mode&0o7777 != s.Mode&0o7777) {
		if err := ignoringEINTR(func() error { return n.chmod(s.Mode & 0o7777) }); err != nil {
			return &opError{op: "chmod", err: err}
		}
	}
	// Neither chown, chmod nor an xattr moves the mtime.
	if cur.Mtim != s.Mtim {
		if err := n.setMtime(s.Mtim); err != nil {
			return &opError{op: "set mtime", err: err}
		}
	}
	return nil
}
