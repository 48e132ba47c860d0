// Command fakehelper is a root helper for the tests of the helper client (package wire) and
// of the commands, scripted by environment variables:
//
//	FAKEHELPER_MODE    done: three progress events, then done (for refresh-system, two
//	                   progress events of phase system, then done with system_version
//	                   FAKEHELPER_SYSTEM_VERSION and bootloader_changed; for
//	                   install-bootloader, done with bootloader syslinux; with
//	                   FAKEHELPER_SYSTEM_CODE, refresh-system sends an error event of that
//	                   code instead); error: an error event with
//	                   FAKEHELPER_CODE; crash: a progress event, lines on stderr, exit 3;
//	                   signal: a progress event, then SIGKILL to itself; hang: a progress
//	                   event, then waits for a cancel line or the end of its input, then
//	                   reports cancelled; term: like hang but ignores its input and reports
//	                   cancelled on SIGTERM; stubborn: a progress event, then ignores its input
//	                   and SIGTERM; garbage: a line that is not JSON, then waits for its input to
//	                   end; longline: a 2 MiB line; silent: exits 0 with no event;
//	                   done-no-report: a done event without report; linger: done, then waits
//	                   for its input to end before exiting.
//	FAKEHELPER_RECORD  a file receiving every line read on standard input.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type event map[string]any

func main() {
	out := bufio.NewWriter(os.Stdout)
	emit := func(e event) {
		b, _ := json.Marshal(e)
		out.Write(append(b, '\n'))
		out.Flush()
	}
	var rec *os.File
	if p := os.Getenv("FAKEHELPER_RECORD"); p != "" {
		var err error
		if rec, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	mode := os.Getenv("FAKEHELPER_MODE")
	var terms chan os.Signal
	switch mode {
	case "term":
		terms = make(chan os.Signal, 1)
		signal.Notify(terms, syscall.SIGTERM)
	case "stubborn":
		signal.Ignore(syscall.SIGTERM)
	}
	in := bufio.NewScanner(os.Stdin)
	// lines delivers the input lines; closed at its end.
	lines := make(chan string)
	go func() {
		defer close(lines)
		for in.Scan() {
			if rec != nil {
				fmt.Fprintln(rec, in.Text())
			}
			lines <- in.Text()
		}
	}()
	req, ok := <-lines
	if !ok || !strings.Contains(req, `"op"`) {
		emit(event{"event": "error", "code": "invalid-request", "message": "no request"})
		os.Exit(1)
	}
	if strings.Contains(req, `"op":"add-key-slot"`) {
		// As the helper does: the secret line is read (and so recorded) before the answer.
		if _, ok := <-lines; !ok {
			emit(event{"event": "error", "code": "invalid-request", "message": "no secret line"})
			os.Exit(1)
		}
	}
	progress := event{"event": "progress", "phase": "copy", "files_done": 1, "files_total": 3, "bytes_done": 10, "bytes_total": 30}
	waitInput := func() {
		for range lines {
		}
	}
	switch {
	case mode == "done" && strings.Contains(req, `"op":"refresh-system"`) && os.Getenv("FAKEHELPER_SYSTEM_CODE") != "":
		emit(event{"event": "error", "code": os.Getenv("FAKEHELPER_SYSTEM_CODE"), "message": "the system failed", "needed": 2000, "available": 1000})
		os.Exit(1)
	case mode == "done" && strings.Contains(req, `"op":"refresh-system"`):
		for i := 1; i <= 2; i++ {
			emit(event{"event": "progress", "phase": "system", "files_done": i, "files_total": 2, "bytes_done": i * 500, "bytes_total": 1000})
		}
		emit(event{"event": "done", "report": event{"updated": 2, "bytes_copied": 1000, "system_version": os.Getenv("FAKEHELPER_SYSTEM_VERSION"), "bootloader_changed": true}})
		return
	case mode == "done" && strings.Contains(req, `"op":"install-bootloader"`):
		emit(event{"event": "done", "report": event{"bootloader": "syslinux"}})
		return
	}
	switch mode {
	case "done", "linger":
		for i := 1; i <= 3; i++ {
			emit(event{"event": "progress", "phase": "copy", "files_done": i, "files_total": 3, "path": fmt.Sprintf("f%d", i)})
		}
		emit(event{"event": "done", "report": event{"created": 3, "bytes_copied": 30, "duration_ns": 1000}})
		if mode == "linger" {
			waitInput()
		}
	case "error":
		ev := event{"event": "error", "code": os.Getenv("FAKEHELPER_CODE"), "message": "it failed", "needed": 2000, "available": 1000}
		// FAKEHELPER_REASON and FAKEHELPER_ARGS (JSON): what the session words.
		if r := os.Getenv("FAKEHELPER_REASON"); r != "" {
			ev["reason"] = r
		}
		if a := os.Getenv("FAKEHELPER_ARGS"); a != "" {
			ev["args"] = json.RawMessage(a)
		}
		emit(ev)
		os.Exit(1)
	case "crash":
		emit(progress)
		fmt.Fprintln(os.Stderr, "panic: boom")
		fmt.Fprintln(os.Stderr, "goroutine 1 [running]:")
		os.Exit(3)
	case "signal":
		emit(progress)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
	case "hang":
		emit(progress)
		for l := range lines {
			if strings.Contains(l, `"cancel"`) {
				break
			}
		}
		emit(event{"event": "error", "code": "cancelled", "message": "cancelled"})
		os.Exit(1)
	case "term":
		emit(progress)
		<-terms
		emit(event{"event": "error", "code": "cancelled", "message": "terminated"})
		os.Exit(1)
	case "stubborn":
		emit(progress)
		time.Sleep(time.Hour)
	case "garbage":
		out.WriteString("this is not json\n")
		out.Flush()
		waitInput()
	case "longline":
		out.WriteString(`{"event":"progress","path":"` + strings.Repeat("a", 2<<20) + "\"}\n")
		out.Flush()
		waitInput()
	case "silent":
	case "done-no-report":
		emit(event{"event": "done"})
	default:
		fmt.Fprintln(os.Stderr, "unknown FAKEHELPER_MODE", mode)
		os.Exit(1)
	}
}
