//go:build linux

// Package killtest supports the tests that kill a copy with SIGKILL at random instants (the
// mirror, the helper's update and restore, the system refresh) and check what each kill left:
//
//   - a week of changes over a generated tree (Generate, Tree.Week): thousands of small files and
//     a few large ones, files written, created, deleted and renamed, modes and xattrs changed,
//     hard-link groups that gain, lose and rewrite members, symlinks retargeted, entries that
//     change type;
//   - the old and new version of every path (Hash), and the check that a tree holds, at every
//     path, its old or its new version and nothing torn (Check);
//   - the campaign: a seeded random source whose seed is logged and can be replayed
//     (TAILS_BACKUP_KILL_SEED), the number of kills (TAILS_BACKUP_KILLS, default 20), random
//     delays, and a child process (the test binary run again) killed after one (Kill).
//
// A process killed with SIGKILL runs no deferred code and no cleanup: what it leaves is what
// the next run, or the user, finds.
package killtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Environment of a campaign.
const (
	// SeedEnv replays a campaign: the seed it logged.
	SeedEnv = "TAILS_BACKUP_KILL_SEED"
	// KillsEnv sets the number of kills of a campaign.
	KillsEnv = "TAILS_BACKUP_KILLS"
	// DefaultKills is the number of kills of a campaign (issue 10 asks for 20).
	DefaultKills = 20
)

// Campaign is one series of kills: its random source, the number of kills, and what they did.
type Campaign struct {
	Seed  uint64
	Kills int
	// Landed counts the kills that hit the child while it was running (not after its end).
	Landed int
	rng    *rand.Rand
}

// NewCampaign reads SeedEnv and KillsEnv (a fresh seed otherwise) and logs the seed and how to
// replay it.
func NewCampaign(t testing.TB) *Campaign {
	t.Helper()
	c := &Campaign{Seed: uint64(time.Now().UnixNano()), Kills: DefaultKills}
	if v := os.Getenv(SeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", SeedEnv, v, err)
		}
		c.Seed = s
	}
	if v := os.Getenv(KillsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a number of kills, at least 1", KillsEnv, v)
		}
		c.Kills = n
	}
	c.rng = rand.New(rand.NewPCG(c.Seed, 0x6b696c6c)) // "kill"
	t.Logf("kill campaign: %d kills, seed %d (replay with %s=%d)", c.Kills, c.Seed, SeedEnv, c.Seed)
	return c
}

// Rand is the campaign's random source, for the tree and its week of changes too, so that the
// seed replays everything.
func (c *Campaign) Rand() *rand.Rand { return c.rng }

// Killed tells whether a child's exit status says SIGKILL ended it.
func Killed(ps *os.ProcessState) bool {
	if ps == nil {
		return false
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Span is the time a whole run of the child takes, and when its copy starts (its first line
// on standard output holding mark): the kills are drawn in it.
type Span struct {
	Total, Copy time.Duration
}

// Time runs cmd to its end and measures its Span.
func Time(t testing.TB, cmd *exec.Cmd, mark string) Span {
	t.Helper()
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var s Span
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if s.Copy == 0 && strings.Contains(sc.Text(), mark) {
			s.Copy = time.Since(start)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the child failed: %v\n%s", err, errOut.String())
	}
	s.Total = time.Since(start)
	if s.Copy == 0 {
		t.Fatalf("the child never said %q: it copied nothing?\n%s", mark, errOut.String())
	}
	return s
}

// Instant is when a kill lands: Delay after the child started, or, when Delay is 0, as soon
// as the child says (a progress line) that Fraction of its copy is done. Under load (the
// tests share the machine) times drift from one run to the next; the copy's own progress
// does not.
type Instant struct {
	Delay    time.Duration
	Fraction float64
}

func (in Instant) String() string {
	if in.Delay > 0 {
		return fmt.Sprintf("%v after the start", in.Delay.Round(time.Millisecond))
	}
	return fmt.Sprintf("at %.1f%% of the copy", 100*in.Fraction)
}

// Instant draws the instant of kill number k: one kill in four at a time anywhere in the run
// (the process starting, the scan, the copy, the flush), the others at a point of the copy,
// where the files change.
func (c *Campaign) Instant(k int, s Span) Instant {
	if k%4 == 0 {
		return Instant{Delay: 1 + c.between(0, s.Total)}
	}
	return Instant{Fraction: c.rng.Float64()}
}

// Kill starts cmd and sends it SIGKILL at the instant in; progress reads the fraction of the
// copy done from a line of the child's standard output (ok false for other lines). It waits
// for the child's end and returns whether the kill landed (the child was still running); a
// child that ended by itself must have succeeded. The campaign counts the kills that landed.
func (c *Campaign) Kill(t testing.TB, cmd *exec.Cmd, in Instant, progress func(line string) (float64, bool)) (landed bool) {
	t.Helper()
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{})
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		said := false
		for sc.Scan() {
			if f, ok := progress(sc.Text()); ok && !said && in.Delay == 0 && f >= in.Fraction {
				close(reached)
				said = true
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	var timer <-chan time.Time
	if in.Delay > 0 {
		timer = time.After(in.Delay)
	}
	select {
	case <-reached:
	case <-timer:
	case <-read:
	}
	_ = cmd.Process.Kill() // after its end (read is closed), there is no process left to kill
	<-read
	err = cmd.Wait()
	if Killed(cmd.ProcessState) {
		c.Landed++
		return true
	}
	if err != nil {
		t.Fatalf("the child ended with %v before it was killed:\n%s", err, errOut.String())
	}
	return false
}

// Fraction is how much of a copy is done, files and bytes weighing the same.
func Fraction(filesDone, filesTotal, bytesDone, bytesTotal int64) float64 {
	f := func(done, total int64) float64 {
		if total <= 0 {
			return 1
		}
		return min(1, float64(done)/float64(total))
	}
	return (f(filesDone, filesTotal) + f(bytesDone, bytesTotal)) / 2
}

func (c *Campaign) between(a, b time.Duration) time.Duration {
	if b <= a {
		return a
	}
	return a + time.Duration(c.rng.Int64N(int64(b-a)))
}

// Child makes the test binary the child process of a campaign when the variable env is set: it
// runs main with its value and exits (1 and the error on standard error if main fails). A test
// function of the package calls it first; in the tests' own process it returns at once.
func Child(env string, main func(arg string) error) {
	v := os.Getenv(env)
	if v == "" {
		return
	}
	if err := main(v); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Command is the test binary run again as a child: only the test function test, which calls
// Child(env, ...), with env set to arg.
func Command(test, env, arg string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+arg)
	return cmd
}

// ScratchDir is a directory for the campaign's file system images, removed at the end of the
// test: on /dev/shm when it is there (memory: the images are written over and over), else in
// the test's temporary directory.
func ScratchDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "tails-backup-kill-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}
