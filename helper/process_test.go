//go:build linux

package helper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/udisks"
	"tails-backup/wire"
)

// The helper as a process of its own: the test binary started again, running what
// `tails-backup helper` runs (ResetProcess, then Run) against the test world, so that it can be
// started under other resource limits, stopped and killed.

// childEnv carries the child's configuration (a JSON childConfig).
const childEnv = "TB_HELPER_CHILD"

// childLimitsPrefix starts the line of standard error where the child writes, after Run, the
// process attributes it ran with.
const childLimitsPrefix = "child-process: "

type childConfig struct {
	Bus, Source, SystemMount, VersionFile string
	ProgressInterval                      time.Duration
	// ProgramPath and GPTMBR, for a refresh of the system partition.
	ProgramPath, GPTMBR string
}

// childAttrs is what the child reports of its own process after Run.
type childAttrs struct {
	Limits   map[string][2]uint64 // name → soft, hard
	Dumpable int
	// Ignored lists the stop signals whose disposition is "ignore".
	Ignored []string
}

// limitNames are the resource limits the child reports.
var limitNames = map[string]int{
	"cpu": unix.RLIMIT_CPU, "fsize": unix.RLIMIT_FSIZE, "nofile": unix.RLIMIT_NOFILE,
	"as": unix.RLIMIT_AS, "data": unix.RLIMIT_DATA, "stack": unix.RLIMIT_STACK,
	"core": unix.RLIMIT_CORE, "nproc": unix.RLIMIT_NPROC,
}

// TestHelperChildProcess is not a test: it is the helper process that the tests of this file
// start (the test binary run again with TB_HELPER_CHILD set).
func TestHelperChildProcess(t *testing.T) {
	cfg := os.Getenv(childEnv)
	if cfg == "" {
		return
	}
	os.Exit(helperChild(cfg))
}

func helperChild(cfg string) int {
	var c childConfig
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	// What runHelper does first, before anything else.
	if err := ResetProcess(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	conn, err := dbus.Connect(c.Bus)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	defer conn.Close()
	l := logrus.New()
	l.SetOutput(os.Stderr)
	l.SetLevel(logrus.DebugLevel)
	err = Run(ctx, os.Stdin, os.Stdout, System{UDisks: udisks.New(conn, udisks.Options{}), Source: c.Source,
		SystemMount: c.SystemMount, VersionFile: c.VersionFile, ProgressInterval: c.ProgressInterval,
		ProgramPath: c.ProgramPath, GPTMBR: c.GPTMBR}, logrus.NewEntry(l))

	a := childAttrs{Limits: map[string][2]uint64{}}
	for name, res := range limitNames {
		var lim unix.Rlimit
		if err := unix.Getrlimit(res, &lim); err == nil {
			a.Limits[name] = [2]uint64{lim.Cur, lim.Max}
		}
	}
	a.Dumpable, _ = unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	for _, sig := range []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU} {
		if signal.Ignored(sig) {
			a.Ignored = append(a.Ignored, unix.SignalName(sig))
		}
	}
	b, _ := json.Marshal(a)
	fmt.Fprintf(os.Stderr, "%s%s\n", childLimitsPrefix, b)
	if err != nil {
		return 1
	}
	return 0
}

// process is a helper running as a child process.
type process struct {
	*session
	cmd    *exec.Cmd
	exited chan struct{} // closed when the child has exited and its output is read
	err    error         // the child's exit, once exited is closed
	stderr *syncBuffer
}

// startProcess starts the helper as a child process, through wrap (a command that runs the
// rest of its command line, such as prlimit) when given, writes input on its standard input
// (kept open) and returns.
func (w *world) startProcess(input string, wrap ...string) *process {
	t := w.t
	t.Helper()
	cfg, _ := json.Marshal(childConfig{Bus: w.bus, Source: w.sys.Source, SystemMount: w.sys.SystemMount,
		VersionFile: w.sys.VersionFile, ProgressInterval: w.sys.ProgressInterval,
		ProgramPath: w.sys.ProgramPath, GPTMBR: w.sys.GPTMBR})
	argv := append(append([]string{}, wrap...), os.Args[0], "-test.run=^TestHelperChildProcess$")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"="+string(cfg))
	// A pipe of the system, not an io.Pipe: Wait would wait for the copy from an io.Pipe, which
	// ends only when the test closes it.
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = inR
	outR, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, exited: make(chan struct{}), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	p.session = &session{t: t, stdin: inW, events: make(chan wire.Event, 4096), result: make(chan error, 1),
		logs: p.stderr, raw: &bytes.Buffer{}}
	p.cancel = func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
	err = cmd.Start()
	inR.Close()
	if err != nil {
		t.Fatal(err)
	}
	readerDone := make(chan struct{})
	go p.readEvents(outR, readerDone)
	go func() {
		<-readerDone
		p.err = cmd.Wait()
		p.result <- p.err
		close(p.exited)
	}()
	t.Cleanup(func() {
		inW.Close()
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("helper process's standard error:\n%s", p.stderr.String())
		}
	})
	if input != "" {
		go func() { _, _ = io.WriteString(inW, input) }()
	}
	return p
}

// kill kills the child with SIGKILL and waits for its end.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	for range p.events {
	}
	<-p.exited
}

// attrs is what the child reported of its process attributes after Run.
func (p *process) attrs() childAttrs {
	p.t.Helper()
	<-p.exited
	sc := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), childLimitsPrefix); ok {
			var a childAttrs
			if err := json.Unmarshal([]byte(line), &a); err != nil {
				p.t.Fatal(err)
			}
			return a
		}
	}
	p.t.Fatalf("the helper process did not report its limits (exit: %v)", p.err)
	return childAttrs{}
}

// state is the state letter of the child in /proc/PID/stat ('R', 'S', 'D', 'T' for stopped...),
// or 0 when it has exited.
func (p *process) state() byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ...: comm may hold spaces and parentheses; the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return 0
	}
	return s[i+2]
}

// hasSysResource tells whether this process has CAP_SYS_RESOURCE, without which no process,
// even root, can raise a hard limit: root on Tails has it, a container may not.
func hasSysResource(t testing.TB) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			var caps uint64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%x", &caps); err != nil {
				t.Fatal(err)
			}
			return caps&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return false
}

// checkResetAttrs checks that the helper ran with its own limits, not dumpable, and ignoring
// the stop signals, whatever its caller had. Without CAP_SYS_RESOURCE, the open-file limit is
// the hard limit the child started with, when lower.
func checkResetAttrs(t *testing.T, a childAttrs, hardNoFile uint64) {
	t.Helper()
	const inf = unix.RLIM_INFINITY
	noFile := uint64(helperNoFile)
	if !hasSysResource(t) {
		noFile = min(noFile, hardNoFile)
	}
	want := map[string][2]uint64{
		"cpu": {inf, inf}, "fsize": {inf, inf}, "nofile": {noFile, noFile},
		"as": {inf, inf}, "data": {inf, inf}, "stack": {helperStack, inf}, "core": {0, 0},
	}
	for name, w := range want {
		if got, ok := a.Limits[name]; !ok || got != w {
			t.Errorf("the helper ran with RLIMIT_%s %v (soft, hard), want %v", strings.ToUpper(name), got, w)
		}
	}
	if a.Dumpable != 0 {
		t.Errorf("the helper ran dumpable (%d): a core dump of it could hold secrets", a.Dumpable)
	}
	if strings.Join(a.Ignored, ",") != "SIGTSTP,SIGTTIN,SIGTTOU" {
		t.Errorf("the helper ignored the stop signals %q, want SIGTSTP, SIGTTIN and SIGTTOU", a.Ignored)
	}
}

// TestHelperProcessLimits: sudo hands the helper the resource limits of its caller, who may
// choose them to make it fail or die in the middle of an operation: a file size limit makes
// every write beyond it fail (EFBIG, SIGXFSZ being ignored by Go), a CPU limit sends SIGKILL
// when it is reached, a low open-file limit fails the mirror's opens. The helper resets them
// first: the update completes, exact, and the helper reports the limits it ran with. Lowered
// hard limits can only be raised with CAP_SYS_RESOURCE (root on Tails has it); without it,
// only soft limits are lowered here.
func TestHelperProcessLimits(t *testing.T) {
	var hard unix.Rlimit
	must(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &hard))
	for _, tt := range []struct {
		name    string
		prlimit string
		hard    bool // lowers hard limits
		memory  bool // lowers RLIMIT_AS
	}{
		{name: "file size", prlimit: "--fsize=1:unlimited"},
		{name: "open files", prlimit: "--nofile=12:"},
		{name: "cpu time", prlimit: "--cpu=1:unlimited"},
		// 1.5 GB: below the 1.7 GB of address space the helper's runtime reserves when free
		// to (VmPeak, 6 threads), so the runtime does with less; at 1 GB its start itself
		// failed now and then under load (pthread_create: EAGAIN, 12 starts in 60 of
		// `tails-backup --help` at a load of 3), before the helper could reset anything.
		{name: "memory", prlimit: "--as=1500000000: --data=1500000000:", memory: true},
		{name: "soft limits at once, core dumps allowed", prlimit: "--fsize=1: --nofile=12: --cpu=1: --core=unlimited --stack=unlimited"},
		{name: "hard limits", prlimit: "--fsize=1:1 --nofile=12:12 --cpu=1:1 --as=1500000000:1500000000 --data=1500000000:1500000000 --stack=100000:100000", hard: true, memory: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.hard && !hasSysResource(t) {
				t.Skip("lowered hard limits can only be raised with CAP_SYS_RESOURCE, which this process lacks (a container)")
			}
			if tt.memory && raceEnabled {
				t.Skip("the race detector cannot start under a lowered RLIMIT_AS")
			}
			w := newWorld(t, worldOpts{})
			fillSource(t, w.src.mnt, 3, 10, 8<<10)
			p := w.startProcess(request(wire.OpUpdate, dstUUID), append([]string{"prlimit"}, append(strings.Fields(tt.prlimit), "--")...)...)
			evs, err := p.finish()
			if err != nil || len(evs) == 0 || evs[len(evs)-1].Event != wire.EventDone {
				t.Fatalf("the update under %s ended with %v, last events:\n%s", tt.prlimit, err, lastLines(p.raw.String(), 3))
			}
			if rep := evs[len(evs)-1].Report; rep == nil || rep.ErrorCount != 0 {
				t.Errorf("report %+v, want no error", rep)
			}
			if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
				t.Errorf("the backup differs from the source:\n%s", diff)
			}
			checkResetAttrs(t, p.attrs(), hard.Max)
		})
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestHelperProcessIgnoresStopSignals: sudo relays SIGTSTP (and SIGTTIN, SIGTTOU) from its
// caller to the helper; stopped, the helper would hold the backup's lock and leave the copy
// half-done for as long as the caller likes. It ignores them and goes on to the end.
func TestHelperProcessIgnoresStopSignals(t *testing.T) {
	w := bigWorld(t)
	p := w.startProcess(request(wire.OpUpdate, dstUUID))
	waitCopying(t, p.session)
	for _, sig := range []syscall.Signal{syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU} {
		if err := p.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
	}
	// A stopped helper never ends: look at its state until it does.
	var last wire.Event
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for ev := range p.events {
			last = ev
		}
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for stopped := false; !stopped; {
		select {
		case <-drained:
			stopped = true
		case <-tick.C:
			if st := p.state(); st == 'T' {
				t.Errorf("the helper was stopped by a stop signal (state %c)", st)
				_ = p.cmd.Process.Kill()
			}
		}
	}
	<-p.exited
	if t.Failed() {
		return
	}
	if p.err != nil || last.Event != wire.EventDone {
		t.Fatalf("the update ended with %v, last event %+v", p.err, last)
	}
	if diff := rsyncDiff(t, w.src.mnt, w.dst.mnt); diff != "" {
		t.Errorf("the backup differs from the source:\n%s", diff)
	}
}
