// Command tails-backup makes and keeps fresh a backup Tails: a second, bootable stick that clones
// this Tails and its Persistent Storage.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"tails-backup/internal/secmem"
	"tails-backup/l10n"
	"tails-backup/session"
)

// command is one subcommand: its one-line summary and its entry point, which gets the arguments
// after the subcommand name.
type command struct {
	summary string
	run     func(ctx context.Context, env *environment, args []string) error
}

// environment is what a command may touch of the outside world, so that tests can replace it.
type environment struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	isTerminal     bool
	// stdinTerminal is true when standard input is a terminal: a person typing, not a program.
	stdinTerminal bool
	// session is what the session commands (pair, status...) take from the system; nil
	// means the real one. Tests give their own.
	session *sessionSystem
	// loc is the session's language (l10n.FromEnv); nil speaks English, as the tests' do
	// unless they give one.
	loc *l10n.Locale
}

// helperProgramName is the name under which the program is the root helper.
const helperProgramName = "helper"

// errUsage is returned, wrapped, for bad command lines; main exits with status 2 for it.
var errUsage = session.ErrUsage

func commands() map[string]command {
	return map[string]command{
		"agent":           {l10n.Mark("the session agent: updates a paired backup when it is plugged in, and reminds"), runAgent},
		"sync":            {l10n.Mark("mirror a directory tree onto another, exactly (rsync -aHAXS --delete --numeric-ids -x)"), runSync},
		"helper":          {l10n.Mark("the root helper (run by the session agent through sudo, no arguments)"), runHelper},
		"pair":            {l10n.Mark("pair a Tails stick plugged in as the backup of this Tails"), runPair},
		"create":          {l10n.Mark("erase a USB stick and make it a backup Tails of this Tails, paired"), runCreate},
		"reminders":       {l10n.Mark("turn the reminders on or off, snooze them, or show when the next one comes"), runReminders},
		"promote":         {l10n.Mark("make this backup Tails your main Tails (when the main one is lost or broken)"), runPromote},
		"status":          {l10n.Mark("show the paired backups, their freshness, the reminders and this Tails' role"), runStatus},
		"verify":          {l10n.Mark("compare a backup with this Tails' Persistent Storage and check it as Tails does at boot"), runVerify},
		"update":          {l10n.Mark("update the paired backup Tails plugged in now, as the agent does when it is plugged in"), runUpdate},
		"restore":         {l10n.Mark("restore this Tails' Persistent Storage from a backup Tails (files not on the backup are deleted)"), runRestore},
		"passphrase-free": {passphraseFreeSummary, runPassphraseFree},
		"forget":          {forgetSummary, runForget},
	}
}

func main() {
	// Every command may hold a passphrase (the agent, pair, create, restore, verify) or root's
	// view of the Persistent Storage (the helper): no core dump, and no other process of the
	// same user may read this one's memory or attach to it.
	loc := l10n.FromEnv(os.Getenv, l10n.Dir)
	if err := secmem.Harden(); err != nil {
		fmt.Fprintln(os.Stderr, loc.Tr("tails-backup: %v; continuing, but a crash could leave a core dump", err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &environment{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, isTerminal: isTerminal(os.Stderr), stdinTerminal: isTerminal(os.Stdin),
		loc: loc}
	args := os.Args[1:]
	// Installed as /usr/lib/tails-backup/helper (a symlink), for the sudoers rule that allows
	// exactly that path with no arguments, the program is the root helper.
	if filepath.Base(os.Args[0]) == helperProgramName {
		args = append([]string{"helper"}, args...)
	}
	code := run(ctx, env, args)
	stop()
	os.Exit(code)
}

// run executes the command line and returns the process exit status.
func run(ctx context.Context, env *environment, args []string) int {
	cmds := commands()
	if len(args) == 2 && args[0] == "help" {
		if args[1] == "helper" { // the helper refuses every argument, --help too
			fmt.Fprint(env.stdout, env.loc.Tr(helperHelp))
			return 0
		}
		// tails-backup help CMD is tails-backup CMD --help.
		args = []string{args[1], "--help"}
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout, env.loc, cmds)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintln(env.stderr, env.loc.Tr("tails-backup: unknown command %q; run 'tails-backup help' to list the commands", args[0]))
		return 2
	}
	err := c.run(ctx, env, args[1:])
	var reported reportedError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &reported):
		return reported.code
	case errors.Is(err, errUsage):
		msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		fmt.Fprintf(env.stderr, "tails-backup %s: %s\n", args[0], msg)
		fmt.Fprintln(env.stderr, env.loc.Tr("run 'tails-backup %s --help' to see how to use it", args[0]))
		return 2
	}
	fmt.Fprintf(env.stderr, "tails-backup %s: %v\n", args[0], err)
	return 1
}

// reportedError is an error that the command has already told the user about: run only
// exits with its status.
type reportedError struct {
	err  error
	code int
}

func (e reportedError) Error() string { return e.err.Error() }
func (e reportedError) Unwrap() error { return e.err }

func usage(w io.Writer, loc *l10n.Locale, cmds map[string]command) {
	fmt.Fprintln(w, loc.Tr("usage: tails-backup COMMAND [OPTIONS] [ARGUMENTS]"))
	fmt.Fprintln(w)
	fmt.Fprintln(w, loc.Tr("commands:"))
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-15s %s\n", n, loc.Tr(cmds[n].summary))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, loc.Tr("run 'tails-backup help COMMAND' (or 'tails-backup COMMAND --help') to see what a command does and its options"))
}
