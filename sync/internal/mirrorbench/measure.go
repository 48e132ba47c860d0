package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run is one timed execution of one tool.
type run struct {
	wall   time.Duration
	maxRSS int64 // KiB: ru_maxrss from wait4, the largest process of the tree (see below)
	sumRSS int64 // KiB: the largest sampled sum of the RSS of the whole process tree
	// cpu is the user and system time of the commands and of every process they reaped, and
	// readBytes the bytes their reads asked of the block devices (ru_inblock, which counts
	// 512-byte units, times 512): a run whose wall time grows while its CPU time does not
	// waited, and readBytes says whether it waited for the disk (inodes and folders no longer in
	// the kernel's caches).
	cpu       time.Duration
	readBytes int64
	err       error
	stdout    string
	stderr    string
	commands  []string
}

// timeCommands runs the commands one after the other and measures them as one: wall time from the
// first start to the last exit, and the largest peak RSS among them. rssFile is scratch space.
//
// Each command runs under /usr/bin/time -f %M, which reports ru_maxrss from its wait4 on the
// command. The wrapper matters: a child of this (large) Go process inherits its parent's RSS
// high-water mark, which exec folds into the child's ru_maxrss, so wait4 here would report at
// least this process's own peak; time is small. ru_maxrss is the maximum of the command's own peak
// and those of all the descendants it reaped (the kernel folds a reaped child's maxrss into the
// parent's cmaxrss, and wait4 reports both), so for rsync, whose generator and receiver are reaped
// by rsync itself, it is the peak of the largest rsync process. As rsync's processes run at the
// same time, the sum of their RSS is sampled too, every 20 ms, from /proc.
func timeCommands(ctx context.Context, rssFile string, cmds [][]string) run {
	var r run
	start := time.Now()
	for _, argv := range cmds {
		r.commands = append(r.commands, strings.Join(argv, " "))
		one, err := timeOne(ctx, rssFile, argv)
		r.maxRSS = max(r.maxRSS, one.maxRSS)
		r.sumRSS = max(r.sumRSS, one.sumRSS)
		r.cpu += one.cpu
		r.readBytes += one.readBytes
		r.stdout += one.stdout
		r.stderr += one.stderr
		if err != nil {
			r.err = err
			break
		}
	}
	r.wall = time.Since(start)
	return r
}

func timeOne(ctx context.Context, rssFile string, argv []string) (run, error) {
	var r run
	_ = os.Remove(rssFile)
	timed := append([]string{"-f", "%M", "-o", rssFile}, argv...)
	cmd := exec.CommandContext(ctx, "/usr/bin/time", timed...)
	// Untranslated output: the scale section reads tails-backup sync's summary.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANGUAGE=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// Its own process group, so that a cancellation kills rsync's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start %s: %w", argv[0], err)
	}
	stop := make(chan struct{})
	sampled := make(chan int64, 1)
	go func() { sampled <- sampleTreeRSS(cmd.Process.Pid, stop) }()
	err := cmd.Wait()
	close(stop)
	r.sumRSS = <-sampled
	r.stdout, r.stderr = stdout.String(), stderr.String()
	r.maxRSS = readMaxRSS(rssFile)
	// wait4's rusage of the time wrapper: it includes the command it reaped, and so on down.
	if ps := cmd.ProcessState; ps != nil {
		r.cpu = ps.UserTime() + ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			r.readBytes = ru.Inblock * 512
		}
	}
	r.sumRSS = max(r.sumRSS, r.maxRSS)
	if err != nil {
		return r, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, lastLines(r.stderr, 5))
	}
	return r, nil
}

// readMaxRSS reads what time -f %M wrote (KiB); the last line, as time prefixes a note when the
// command failed.
func readMaxRSS(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(lastLines(string(b), 1)), 10, 64)
	return n
}

// sampleTreeRSS returns the largest total RSS (KiB) of the descendants of pid (the time wrapper,
// itself not counted) seen until stop.
func sampleTreeRSS(pid int, stop <-chan struct{}) int64 {
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		peak = max(peak, treeRSS(pid)-processRSS(pid))
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// treeRSS sums the resident set of pid and its descendants, from /proc/PID/statm and
// /proc/PID/task/TID/children. Processes that exit meanwhile count as zero.
func treeRSS(pid int) int64 {
	total := processRSS(pid)
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, c := range strings.Fields(string(children)) {
			if cpid, err := strconv.Atoi(c); err == nil {
				total += treeRSS(cpid)
			}
		}
	}
	return total
}

// processRSS is the resident set of one process in KiB, 0 if it is gone.
func processRSS(pid int) int64 {
	statm, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(statm))
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(fields[1], 10, 64)
	return pages * int64(os.Getpagesize()) / 1024
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
