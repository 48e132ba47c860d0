package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// waitSyscallCmd waits until a thread of a process started as PROGRAM (its argv[0]) is inside
// system call NR, and prints its pid, thread and how long the wait took. It watches from outside, as
// strace would, through /proc/PID/task/TID/syscall (the number of the system call a thread is
// blocked in; "running" when it is not in one): the product has no hook for the tests.
// The scenarios use it to pull the backup while the root helper is in its final syncfs(2)
// (306 on x86_64), which the mirror engine calls once, at the end of the copy.
//
//	wait-syscall [--argv0 /usr/lib/tails-backup/helper] [--timeout 5m] NR
func waitSyscallCmd(ctx context.Context, args []string) error {
	fset := flag.NewFlagSet("wait-syscall", flag.ContinueOnError)
	// The root helper, run by the agent through sudo (agent.DefaultHelperCommand): a symbolic
	// link to /usr/bin/tails-backup, which the agent also runs, so its argv[0] tells it apart.
	exe := fset.String("argv0", "/usr/lib/tails-backup/helper", "the process's argv[0]")
	timeout := fset.Duration("timeout", 5*time.Minute, "how long to wait")
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() != 1 {
		return errors.New("usage: wait-syscall [flags] NR")
	}
	nr := fset.Arg(0)
	if _, err := strconv.Atoi(nr); err != nil {
		return fmt.Errorf("system call number %q: %w", nr, err)
	}
	start := time.Now()
	deadline := start.Add(*timeout)
	var pids []string
	for i := 0; ; i++ {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no process of %s entered system call %s within %v", *exe, nr, *timeout)
		}
		// The processes change rarely (one helper per update): look for them every 100 ms,
		// at their threads every 2 ms (a syncfs of a throttled stick lasts seconds).
		if i%50 == 0 {
			pids = findProcs(*exe)
		}
		for _, pid := range pids {
			tasks, _ := filepath.Glob("/proc/" + pid + "/task/*/syscall")
			for _, t := range tasks {
				b, err := os.ReadFile(t)
				if err != nil {
					continue
				}
				if f := strings.Fields(string(b)); len(f) > 0 && f[0] == nr {
					fmt.Printf("pid %s thread %s in system call %s after %s\n", pid, filepath.Base(filepath.Dir(t)), nr, time.Since(start).Round(time.Millisecond))
					return nil
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// findProcs lists the processes started as exe (their argv[0]).
func findProcs(exe string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if argv0, _, _ := strings.Cut(string(b), "\x00"); err == nil && argv0 == exe {
			out = append(out, e.Name())
		}
	}
	return out
}
