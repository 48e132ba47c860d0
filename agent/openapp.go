package agent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// The pages of the Backup app that a click on a notification opens (app/tailsbackup/viewmodel.py
// PAGES).
const (
	pageOverview = "overview"
	pageCreate   = "create"
	pagePair     = "pair"
	pagePromote  = "promote"
)

// openAgain is how long after a click on a notification that opened the app another
// invocation of its default action is taken for the same click.
const openAgain = 2 * time.Second

// appProgram is the Backup app, where make install and the Debian package put it; a
// tails-backup-app on PATH comes first.
const appProgram = "/usr/bin/tails-backup-app"

// LaunchApp opens the Backup app on page (tails-backup-app --page PAGE): the app is one
// instance per session, so a second start only shows that page. The app runs detached from
// the agent, in a session of its own, with the agent's environment (the desktop session's);
// LaunchApp does not wait for it.
func LaunchApp(ctx context.Context, page string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("open the Backup app: %w", err)
	}
	prog, err := exec.LookPath("tails-backup-app")
	if err != nil {
		prog = appProgram
	}
	// Not CommandContext: the window outlives the click that opened it.
	cmd := exec.Command(prog, "--page", page)
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open the Backup app: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reaped when it ends
	return nil
}

// openApp opens the Backup app on page, for a click on a notification; a failure is logged.
func (a *Agent) openApp(ctx context.Context, page string) {
	a.log.WithField("page", page).Info("a notification was clicked: opening the Backup app")
	if err := a.deps.OpenApp(ctx, page); err != nil {
		a.log.WithError(err).Warn("open the Backup app")
	}
}
