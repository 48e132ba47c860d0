package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/sync/internal/treegen"
	"tails-backup/sync/internal/treegen/ext4img"
)

// tool names one side of the comparison.
type tool int

const (
	ours    tool = iota // the engine as it runs on this kernel (the *xattrat calls if it has them)
	ours612             // the engine with the *xattrat calls refused, as on Tails 7's Linux 6.12
	rsync
	numTools
)

var tools = [numTools]tool{ours, ours612, rsync}

func (t tool) String() string { return [...]string{"ours", "ours-6.12", "rsync"}[t] }

// peer names another copy tool timed, for reference, on the full copy only: not part of the
// targets, and its copy is checked but not required to be exact (the check's output is shown).
type peer int

const (
	cpA     peer = iota // GNU cp -a, one process
	tarPipe             // GNU tar -c piped into tar -x, with xattrs, ACLs and holes
	numPeers
)

func (p peer) String() string { return [...]string{"cp -a", "tar pipe"}[p] }

// argv is the peer's command, copying src's contents into the existing folder dst.
func (p peer) argv(src, dst string) []string {
	if p == cpA {
		return []string{"cp", "-a", src + "/.", dst + "/"}
	}
	const flags = "--xattrs --xattrs-include='*' --acls --sparse --numeric-owner"
	return []string{"bash", "-o", "pipefail", "-c",
		fmt.Sprintf("tar -C '%s' %s -cf - . | tar -C '%s' %s -xf -", src, flags, dst, flags)}
}

// bench holds one benchmark run: its temporary directory, the three file systems and what it learnt.
type bench struct {
	cfg config
	log io.Writer
	tmp string
	bin string
	src *ext4img.Image
	dst [numTools]*ext4img.Image // indexed by tool
	// peer is the destination of the create floor and of the peers, reformatted before each.
	peer *ext4img.Image
	// created is the source read into memory for the create floor, once.
	created *createTree
	// createChecked is set once a create floor's tree was found the same as the source's.
	createChecked bool
	self          string // this program, which runs ours612 under the seccomp filter
	stats         treegen.Stats
	gen           time.Duration
	// scales is the scale section's outcome, after the scenarios.
	scales []scaleResult
	// elapsed is how long the set-up and the scenarios took, the scale section aside.
	elapsed time.Duration
}

// scenario is one line of the table. prepare runs before each repetition, outside the timing,
// and says what it did; then floorBefore or floorAfter, if set, times the scenario's physical
// floor on the same file systems, before the tools run (the write floor needs an empty
// destination) or after them (the statx walk then sees the trees as the tools left them).
type scenario struct {
	name        string
	target      float64 // the largest acceptable ours/rsync time ratio
	floorName   string
	floorTarget float64 // the largest acceptable ours/floor ratio, 0 for none
	prepare     func(ctx context.Context, rep int) (string, error)
	floorBefore func(ctx context.Context) (time.Duration, error)
	floorAfter  func(ctx context.Context) (time.Duration, error)
	// floor2Name and floor2After, if set, are a second floor timed after the tools.
	floor2Name  string
	floor2After func(ctx context.Context) (time.Duration, error)
	// peers runs the peers after the tools and the floors (the full copy only).
	peers bool
	// update: an update scenario, repeated cfg.updateReps times (see reps).
	update bool
}

// result is what a scenario measured.
type result struct {
	scenario
	runs     [numTools][]run // by tool, one per repetition
	floors   []time.Duration // the floor, per repetition
	floors2  []time.Duration // the second floor, per repetition
	peerRuns [numPeers][]run // by peer, one per repetition
	// peerWrong is the oracle's output on each peer's first copy, "" if it is exact.
	peerWrong [numPeers]string
	prepared  []string           // what prepare did, per repetition
	wrong     [numTools]string   // by tool: the oracle's output when the destination differs from the source
	failed    [numTools][]string // by tool: errors of the runs
}

// correct tells whether every tool ran without error and left an exact copy.
func (r result) correct() bool {
	for _, t := range tools {
		if r.wrong[t] != "" || len(r.failed[t]) > 0 {
			return false
		}
	}
	return true
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// run sets up, runs every scenario and cleans up, whatever happens.
func (b *bench) run(ctx context.Context) (results []result, err error) {
	defer func() { err = errors.Join(err, b.cleanup()) }()
	start := time.Now()
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	for _, sc := range b.scenarios() {
		r, err := b.runScenario(ctx, sc)
		results = append(results, r)
		if err != nil {
			return results, fmt.Errorf("scenario %s: %w", sc.name, err)
		}
	}
	b.elapsed = time.Since(start)
	b.scales = b.runScales(ctx)
	return results, nil
}

func (b *bench) scenarios() []scenario {
	seed := b.cfg.seed
	statx := func(ctx context.Context) (time.Duration, error) {
		d, _, err := statxFloor(ctx, b.src.MountPoint, b.dst[ours].MountPoint)
		return d, err
	}
	return []scenario{
		{name: "a. full copy", target: 0.6, floorName: "write", floorTarget: 1.25,
			prepare: func(ctx context.Context, _ int) (string, error) {
				// Fresh empty file systems for all, so that every repetition is a real first copy.
				for _, d := range b.dst {
					if err := d.Reformat(ctx); err != nil {
						return "", err
					}
				}
				return "destinations reformatted", nil
			},
			floorBefore: func(ctx context.Context) (time.Duration, error) {
				d, err := writeFloor(ctx, b.dst[ours].MountPoint, b.stats.DataBytes)
				if err != nil {
					return 0, err
				}
				// The floor's blocks, freed, must not make ours's copy faster or slower.
				return d, b.dst[ours].Reformat(ctx)
			},
			floor2Name: "create",
			floor2After: func(ctx context.Context) (time.Duration, error) {
				if b.created == nil {
					t0 := time.Now()
					var err error
					if b.created, err = loadCreateTree(b.src.MountPoint); err != nil {
						return 0, fmt.Errorf("read the source into memory: %w", err)
					}
					b.logf("create floor: %d inodes, %d more hard-link names, %.2f GiB read into memory in %s",
						b.created.inodes, b.created.names, float64(b.created.bytes)/(1<<30), time.Since(t0).Round(time.Millisecond))
				}
				if err := b.peer.Reformat(ctx); err != nil {
					return 0, err
				}
				unix.Sync()
				d, err := createFloor(ctx, b.created, b.peer.MountPoint)
				if err != nil || b.createChecked {
					return d, err
				}
				// Once: the floor made the same names, bytes, symlinks and hard links (its
				// owners, modes, times and xattrs are not the source's, on purpose).
				cmd := exec.CommandContext(ctx, "rsync", "-rlHn", "-i", "--checksum", "--exclude=/"+cacheDirName,
					b.src.MountPoint+"/", b.peer.MountPoint+"/")
				out, err := cmd.CombinedOutput()
				if err != nil || len(out) > 0 {
					return d, fmt.Errorf("the create floor's tree differs from the source (%v):\n%s", err, lastLines(string(out), 10))
				}
				b.createChecked = true
				return d, nil
			},
			peers: true},
		{name: "b. no-op update", target: 0.3, floorName: "statx", floorTarget: 1.5,
			prepare:    func(context.Context, int) (string, error) { return "nothing changed", nil },
			floorAfter: statx, update: true},
		{name: "c. 1% data changed", target: 0.3, floorName: "statx",
			prepare: func(_ context.Context, rep int) (string, error) {
				n, err := treegen.ChangeData(b.src.MountPoint, 0.01, seed*1000+uint64(rep))
				return fmt.Sprintf("%d files rewritten", n), err
			},
			floorAfter: statx, update: true},
		{name: "d. 1% metadata changed", target: 0.3, floorName: "statx",
			prepare: func(_ context.Context, rep int) (string, error) {
				n, err := treegen.ChangeMetadata(b.src.MountPoint, 0.01, seed*1000+500+uint64(rep))
				return fmt.Sprintf("%d entries chmod/chown/touch/setxattr", n), err
			},
			floorAfter: statx, update: true},
	}
}

// repsOf is how many times sc is repeated: an update takes about a second per repetition
// (rsync's half of it) against some ten for the full copy, and its ratio to rsync, near its
// target, moves by a tenth from one run of the table to the next on a shared machine: more
// repetitions steady its median for little time.
func (c config) repsOf(sc scenario) int {
	if sc.update {
		return c.updateReps
	}
	return c.reps
}

// setup checks the tools, builds the binary, makes the three file systems and generates the tree.
func (b *bench) setup(ctx context.Context) error {
	for _, t := range []string{"rsync", "mkfs.ext4", "mount", "umount", "losetup", "sync", "df", "/usr/bin/time"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s is missing: run ./.ci/deps bench (rsync, e2fsprogs, util-linux, coreutils, time)", t)
		}
	}
	tmp, err := os.MkdirTemp("", "mirrorbench-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	b.tmp = tmp
	if b.self, err = os.Executable(); err != nil {
		return fmt.Errorf("find this program, to run the 6.12 path under a seccomp filter: %w", err)
	}
	if err := b.binary(ctx); err != nil {
		return err
	}
	if err := b.makeTree(ctx, treegen.BenchSpec(b.cfg.files, b.cfg.seed)); err != nil {
		return err
	}
	var err2 error
	b.peer, err2 = ext4img.Create(ctx, filepath.Join(b.tmp, "peer.img"), filepath.Join(b.tmp, "peer"), "TailsData",
		b.src.Size, b.src.Inodes)
	if err2 != nil {
		return fmt.Errorf("image peer: %w", err2)
	}
	return nil
}

// makeTree makes the source and the three destination file systems in b.tmp, sized for spec,
// and generates spec's tree in the source.
func (b *bench) makeTree(ctx context.Context, spec treegen.Spec) error {
	est := treegen.Estimate(spec)
	// Room for the tree, the changes and ext4's own needs; the image files are sparse, so a generous
	// size costs no disk. Twice the inodes leaves room for temporary files.
	size := (est.DiskBytes*14/10 + 512<<20) &^ (1<<20 - 1)
	inodes := est.Entries()*2 + 16384
	b.logf("images of %d MiB, %d inodes each, in %s", size>>20, inodes, b.tmp)
	names := []string{"src", "ours", "ours612", "rsync"}
	var imgs [4]*ext4img.Image
	for i, n := range names {
		im, err := ext4img.Create(ctx, filepath.Join(b.tmp, n+".img"), filepath.Join(b.tmp, n), "TailsData", size, inodes)
		if im != nil {
			imgs[i] = im
		}
		b.src, b.dst[ours], b.dst[ours612], b.dst[rsync] = imgs[0], imgs[1], imgs[2], imgs[3]
		if err != nil {
			return fmt.Errorf("image %s: %w", n, err)
		}
	}
	b.logf("generating the tree: %d files, about %.2f GiB of data (seed %d)", spec.Files,
		float64(est.DataBytes)/(1<<30), spec.Seed)
	start := time.Now()
	var err error
	b.stats, err = treegen.Generate(ctx, b.src.MountPoint, spec)
	if err != nil {
		return err
	}
	unix.Sync()
	b.gen = time.Since(start)
	b.logf("generated in %s", b.gen.Round(time.Millisecond))
	return nil
}

// binary uses -bin, or builds the CLI from this module into the temporary directory.
func (b *bench) binary(ctx context.Context) error {
	if b.cfg.bin != "" {
		abs, err := filepath.Abs(b.cfg.bin)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("-bin: %w", err)
		}
		b.bin = abs
		return nil
	}
	b.bin = filepath.Join(b.tmp, "tails-backup")
	b.logf("building tails-backup")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.bin, "tails-backup/cmd/tails-backup")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/tails-backup: %w\n%s", err, out)
	}
	return nil
}

// cleanup unmounts and detaches every image, and removes them unless -keep.
func (b *bench) cleanup() error {
	var errs []error
	for _, im := range append([]*ext4img.Image{b.src, b.peer}, b.dst[:]...) {
		if im == nil {
			continue
		}
		if b.cfg.keep {
			errs = append(errs, im.Unmount())
		} else {
			errs = append(errs, im.Remove())
		}
	}
	if b.tmp == "" {
		return errors.Join(errs...)
	}
	if b.cfg.keep {
		b.logf("images kept in %s; mount one with: mount -o loop,acl,user_xattr %s/src.img /mnt", b.tmp, b.tmp)
	} else if err := errors.Join(errs...); err == nil {
		errs = append(errs, os.RemoveAll(b.tmp))
	}
	return errors.Join(errs...)
}

// runScenario runs the repetitions, rotating which tool goes first, then checks every copy.
func (b *bench) runScenario(ctx context.Context, sc scenario) (result, error) {
	r := result{scenario: sc}
	for rep := 0; rep < b.cfg.repsOf(sc); rep++ {
		what, err := sc.prepare(ctx, rep)
		if err != nil {
			return r, fmt.Errorf("prepare: %w", err)
		}
		r.prepared = append(r.prepared, what)
		floor := func(f func(context.Context) (time.Duration, error)) error {
			if f == nil {
				return nil
			}
			unix.Sync()
			d, err := f(ctx)
			if err != nil {
				return fmt.Errorf("%s floor: %w", sc.floorName, err)
			}
			r.floors = append(r.floors, d)
			b.logf("%-24s rep %d %-9s %7.3fs", sc.name, rep+1, sc.floorName+" floor", d.Seconds())
			return nil
		}
		if err := floor(sc.floorBefore); err != nil {
			return r, err
		}
		// Flush what prepare or the previous runs left dirty, so that no tool pays for it.
		unix.Sync()
		for i := range tools {
			t := tools[(i+rep)%len(tools)]
			run := b.runTool(ctx, t)
			if ctx.Err() != nil {
				return r, ctx.Err()
			}
			r.runs[t] = append(r.runs[t], run)
			if run.err != nil {
				r.failed[t] = append(r.failed[t], run.err.Error())
			}
			b.logf("%-24s rep %d %-9s %7.3fs  peak RSS %6.1f MiB (Σ %6.1f)  %s", sc.name, rep+1, t, run.wall.Seconds(),
				float64(run.maxRSS)/1024, float64(run.sumRSS)/1024, summary(t, run, what))
		}
		if err := floor(sc.floorAfter); err != nil {
			return r, err
		}
		if sc.floor2After != nil {
			unix.Sync()
			d, err := sc.floor2After(ctx)
			if err != nil {
				return r, fmt.Errorf("%s floor: %w", sc.floor2Name, err)
			}
			r.floors2 = append(r.floors2, d)
			b.logf("%-24s rep %d %-9s %7.3fs", sc.name, rep+1, sc.floor2Name+" floor", d.Seconds())
		}
		if sc.peers {
			if err := b.runPeers(ctx, &r, rep); err != nil {
				return r, err
			}
		}
	}
	for _, t := range tools {
		diff, err := b.verify(ctx, b.dst[t].MountPoint)
		if err != nil {
			return r, err
		}
		r.wrong[t] = diff
		if diff != "" {
			b.logf("%s: %s destination DIFFERS from the source:\n%s", sc.name, t, lastLines(diff, 20))
		}
	}
	return r, nil
}

func summary(t tool, r run, prepared string) string {
	if r.err != nil {
		return "FAILED: " + r.err.Error()
	}
	if t != rsync {
		return "(" + prepared + ") " + strings.TrimSpace(lastLines(r.stdout, 1))
	}
	return ""
}

// runTool times one tool mirroring the source onto its destination. rsync is followed by
// `sync -f DST` (syncfs), as our engine ends with syncfs(2) of the destination before reporting.
// ours612 is this program re-executed with noXattrAtFlag, which installs the seccomp filter and
// then executes the engine (the filter stays across execve): the only difference from ours.
func (b *bench) runTool(ctx context.Context, t tool) run {
	src, dst := b.src.MountPoint, b.dst[t].MountPoint
	rssFile := filepath.Join(b.tmp, "maxrss")
	argv := []string{b.bin, "sync"}
	if b.cfg.xattrCache {
		argv = append(argv, "--xattr-cache", filepath.Join(dst, cacheDirName), "--exclude", cacheDirName)
	}
	argv = append(argv, src, dst)
	switch t {
	case ours:
		return timeCommands(ctx, rssFile, [][]string{argv})
	case ours612:
		return timeCommands(ctx, rssFile, [][]string{append([]string{b.self, noXattrAtFlag}, argv...)})
	}
	return timeCommands(ctx, rssFile, [][]string{
		{"rsync", "-aHAXS", "--delete", "--numeric-ids", src + "/", dst + "/"},
		{"sync", "-f", dst},
	})
}

// runPeers times each peer copying the source onto the peer file system, emptied first, then
// flushing it with sync -f; the first repetition's copies are checked.
func (b *bench) runPeers(ctx context.Context, r *result, rep int) error {
	for p := range numPeers {
		if err := b.peer.Reformat(ctx); err != nil {
			return err
		}
		unix.Sync()
		dst := b.peer.MountPoint
		run := timeCommands(ctx, filepath.Join(b.tmp, "maxrss"), [][]string{p.argv(b.src.MountPoint, dst), {"sync", "-f", dst}})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r.peerRuns[p] = append(r.peerRuns[p], run)
		status := ""
		if run.err != nil {
			status = "FAILED: " + run.err.Error()
		}
		b.logf("%-24s rep %d %-9s %7.3fs  peak RSS %6.1f MiB  %s", r.name, rep+1, p, run.wall.Seconds(),
			float64(run.maxRSS)/1024, status)
		if rep == 0 {
			diff, err := b.verify(ctx, dst)
			if err != nil {
				return err
			}
			if run.err != nil && diff == "" {
				diff = status
			}
			r.peerWrong[p] = diff
			if diff != "" {
				b.logf("%s: the %s copy differs from the source (%d lines):\n%s", r.name, p,
					strings.Count(diff, "\n"), lastLines(diff, 10))
			}
		}
	}
	return nil
}

// cacheDirName is the folder, at the root of each of ours's destinations, where -xattr-cache
// keeps its xattr cache; it is excluded from the mirror and from the checks.
const cacheDirName = "tails-backup-cache"

// verify asks rsync, comparing contents, what it would still change in dst; "" means identical.
func (b *bench) verify(ctx context.Context, dst string) (string, error) {
	cmd := exec.CommandContext(ctx, "rsync", "-aHAXS", "--numeric-ids", "--delete", "-n", "-i", "--checksum",
		"--exclude=/"+cacheDirName, b.src.MountPoint+"/", dst+"/")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if err != nil {
		return fmt.Sprintf("rsync check failed: %v\n%s", err, out), nil
	}
	return string(out), nil
}
