// Command e2e-guest runs inside the end-to-end test guest. As root it installs each run's
// build (install), serves the test driver's control channel (serve), prepares simulated Tails
// sticks (make-tails, boot-tails, fill, change) and waits on udisks (wait-drive). As amnesia it
// is the desktop's notification server (notifyd) and its control client (notifications).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// As /init of the simulated Tails' initramfs (live/initrd.img), the kernel runs it as PID 1.
	if os.Getpid() == 1 {
		liveInit()
		return
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2e-guest install|serve|notifyd|notifications|make-tails|boot-tails|fill|change|wait-drive|manifest|check-tree|wait-syscall|stick-speed ...")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cmds := map[string]func(context.Context, []string) error{
		"install":        install,
		"serve":          serve,
		"notifyd":        notifyd,
		"notifications":  notifications,
		"make-tails":     makeTails,
		"boot-tails":     bootTails,
		"fill":           fillCmd,
		"change":         changeCmd,
		"wait-drive":     waitDrive,
		"upgrade-medium": upgradeMedium,
		"manifest":       manifestCmd,
		"check-tree":     checkTreeCmd,
		"wait-syscall":   waitSyscallCmd,
		"stick-speed":    stickSpeedCmd,
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "e2e-guest: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := cmd(ctx, os.Args[2:]); err != nil {
		fmt.Fprintf(os.Stderr, "e2e-guest %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
