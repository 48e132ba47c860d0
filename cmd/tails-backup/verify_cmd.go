package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/helper"
	"tails-backup/pinentry"
	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/wire"
)

const verifySynopsis = "[--checksum] [--skip FOLDER]... [--state FILE] [--helper-command CMD] [--source DIR] [DEVICE|PATH]"

const verifyDescription = `Compare a backup with the Persistent Storage of this Tails, without changing anything: the
metadata of every file and folder (type, owner, mode, mtime, ACLs and other xattrs, symlink
targets, hard links), and with --checksum the content of every file too. Then check the backup's
Persistent Storage the way Tails does at boot (ownership, modes and ACL of its root and of
persistence.conf, and every line of persistence.conf).

Each difference is one line: a change letter, a type letter, what differs and the path.
  >f data        Persistent/notes.txt   a file's content differs (update would copy it)
  >f new         Persistent/todo.txt    missing on the backup
  cL target      dotfiles/.bashrc       a symbolic link's target differs
  .d mode,mtime  thunderbird/           only metadata differs
  *deleting      old.txt                only on the backup (update would delete it)
Types: f file, d folder, L symbolic link, D device, S socket or pipe.

DEVICE (e.g. /dev/sdb) is the backup Tails stick, which may be left out when one paired backup is
plugged in: it is unlocked (you type its passphrase) and mounted if needed, compared by the root
helper, then unmounted and locked again if it was locked.
PATH is an already mounted Persistent Storage (for example on another computer): it is compared
with --source, in this process, which must run as root to read everything.

Exit status: 0 when the backup is identical and valid, 1 otherwise, 2 for a usage error.`

// runVerify is `tails-backup verify`.
func runVerify(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "verify", verifySynopsis, env.loc.Tr(verifyDescription))
	checksum := fs.Bool("checksum", false, env.loc.Tr("compare the content of every file too (reads everything: slower)"))
	var skip stringList
	fs.Var(&skip, "skip", env.loc.Tr("a top-level folder of the Persistent Storage not to compare (repeatable)"))
	statePath := fs.String("state", "", env.loc.Tr(stateFlagHelp))
	helperCmd := fs.String("helper-command", defaultHelperCommand(), env.loc.Tr("how to run the root helper (DEVICE mode)"))
	source := fs.String("source", tails.PersistentStorageMount, env.loc.Tr("the Persistent Storage to compare with (PATH mode)"))
	verbose := fs.Bool("verbose", false, env.loc.Tr("log debug messages"))
	if done, err := parseFlags(env.loc, fs, args); done {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("give at most one device or folder, e.g. 'tails-backup verify /dev/sdb'"))
	}
	for _, s := range skip {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
			return fmt.Errorf("%w: %s", errUsage, env.loc.Tr("--skip %q is not a top-level folder of the Persistent Storage", s))
		}
	}
	log := newLog(env, *verbose, "verify")
	arg := fs.Arg(0)
	// A device is /dev/sdb or sdb; anything else with a slash, or an existing folder, is a PATH.
	if arg != "" && !strings.HasPrefix(arg, "/dev/") {
		if fi, err := os.Stat(arg); strings.Contains(arg, "/") || (err == nil && fi.IsDir()) {
			return verifyPath(ctx, env, *source, arg, *checksum, skip, log)
		}
	}
	return verifyDevice(ctx, env, arg, *checksum, skip, *statePath, *helperCmd, log)
}

// verifyPath compares the mounted Persistent Storage at dst with src in this process. The
// comparison (helper.VerifyTrees) is the mirror engine's dry run, the same the helper's verify
// runs: session.Verify cannot call it, as nothing on the session side may link sync.
func verifyPath(ctx context.Context, env *environment, src, dst string, checksum bool, skip []string, log *logrus.Entry) error {
	// The folder the user gave first: its faults are the likelier, and the ones to name.
	loc := env.loc
	open := func(backup bool, p string) (int, error) {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return fd, nil
		case (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) && backup:
			return -1, errors.New(loc.Tr("the backup %s cannot be read: run the command as root, with sudo, to read everything", p))
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			return -1, errors.New(loc.Tr("the Persistent Storage %s cannot be read: run the command as root, with sudo, to read everything", p))
		case errors.Is(err, unix.ENOENT) && backup:
			return -1, errors.New(loc.Tr("the backup %s does not exist: give the folder where the backup's Persistent Storage is mounted", p))
		case errors.Is(err, unix.ENOENT):
			return -1, errors.New(loc.Tr("the Persistent Storage %s does not exist: unlock the Persistent Storage of this Tails, or give the folder to compare with with --source", p))
		case errors.Is(err, unix.ENOTDIR) && backup:
			return -1, errors.New(loc.Tr("the backup %s is not a folder: give the folder where the backup's Persistent Storage is mounted", p))
		case errors.Is(err, unix.ENOTDIR):
			return -1, errors.New(loc.Tr("the Persistent Storage %s is not a folder: unlock the Persistent Storage of this Tails, or give the folder to compare with with --source", p))
		case backup:
			// TRANSLATORS: %[1]s is a folder, %[2]s says why (in English).
			return -1, errors.New(loc.Tr("the backup %[1]s cannot be opened (%[2]s): give the folder where the backup's Persistent Storage is mounted", p, session.Reason(err)))
		}
		return -1, errors.New(loc.Tr("the Persistent Storage %[1]s cannot be opened (%[2]s): unlock the Persistent Storage of this Tails, or give the folder to compare with with --source", p, session.Reason(err)))
	}
	dstfd, err := open(true, dst)
	if err != nil {
		return err
	}
	defer unix.Close(dstfd)
	srcfd, err := open(false, src)
	if err != nil {
		return err
	}
	defer unix.Close(srcfd)
	root := os.Geteuid() == 0
	if !root {
		fmt.Fprintln(env.stderr, env.loc.Tr("Warning: not running as root, so the files only root can read (persistence.conf, Wi-Fi passwords...) are reported as errors; run it with sudo to compare everything."))
	}
	f := &verifyFindings{w: env.stdout, loc: env.loc}
	rep, err := helper.VerifyTrees(ctx, srcfd, dstfd, helper.VerifyOptions{
		Checksum: checksum,
		Exclude:  tails.MirrorExcludes(skip),
		Log:      log.WithField("component", "sync"),
	}, f.event)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New(env.loc.Tr("interrupted (%v), so the comparison is incomplete", ctx.Err()))
		}
		log.WithError(err).Debug("compare")
		return errors.New(env.loc.Tr("cannot compare %[1]s with %[2]s (%[3]s)", dst, src, session.Reason(err)))
	}
	advice := env.loc.Tr("the backup is not an exact, valid copy")
	if !root && rep.ErrorCount > 0 {
		advice = env.loc.Tr("the backup is not an exact, valid copy; some files could not be read: run it as root")
	}
	return f.summarize(rep, checksum, advice)
}

// verifyDevice compares the backup stick dev (or the only paired backup plugged in) through
// the root helper (session.Verify).
func verifyDevice(ctx context.Context, env *environment, dev string, checksum bool, skip []string, statePath, helperCmd string, log *logrus.Entry) error {
	helper, err := helperClient(env.loc, helperCmd, log)
	if err != nil {
		return err
	}
	sys := env.sessionSystem()
	connect, closeDisks := connectDisks(env.loc, sys, log, "verify", true)
	defer closeDisks()
	f := &verifyFindings{w: env.stdout, loc: env.loc}
	v := &session.Verify{
		Connect: connect, Boot: sys.boot, Store: storeAt(env.loc, statePath, sys, log), Helper: helper,
		Asker: pinentry.NewPinentry(log.WithField("component", "pinentry")), Log: log, Loc: env.loc,
		UI:     &verifyTerminal{terminal{env: env}, f},
		Device: dev, Checksum: checksum, Skip: skip,
	}
	rep, err := v.Run(ctx)
	if err != nil {
		return err
	}
	return f.summarize(rep, checksum, env.loc.Tr("plug the backup in to update it, or run 'tails-backup verify' again after the update"))
}

// verifyTerminal shows a verify's findings as they come.
type verifyTerminal struct {
	terminal
	findings *verifyFindings
}

func (t *verifyTerminal) Event(ev wire.Event) { t.findings.event(ev) }
