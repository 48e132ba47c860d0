// Command demo shows the main job of tails-backup end to end on this machine, until the virtual
// machine harness exists: a backup stick is made an exact copy of a Tails Persistent Storage, the
// main Tails is used for a week, and the backup is updated. Both "sticks" are ext4 file systems in
// image files, loop-mounted with acl,user_xattr; rsync checks each result independently. It exits
// 1 if a copy is not exact or a command fails. Run as root (make demo):
//
//	go run ./sync/internal/demo -bin bin/tails-backup
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() { os.Exit(mainStatus()) }

func mainStatus() int {
	bin := flag.String("bin", "bin/tails-backup", "the tails-backup binary to demonstrate")
	flag.Parse()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "demo: run as root (make demo): it mounts file systems and copies root-owned files")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills at once
	}()
	d := &demo{bin: *bin, out: os.Stdout}
	if err := d.run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		return 1
	}
	if d.failures > 0 {
		fmt.Fprintf(os.Stdout, "\ndemo: %d check(s) FAILED, see above\n", d.failures)
		return 1
	}
	return 0
}
