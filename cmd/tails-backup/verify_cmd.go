package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/helper"
	"tails-backup/pairing"
	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/udisks"
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

// verifyFindings gathers what a verify printed.
type verifyFindings struct {
	w        io.Writer
	changes  int64 // change lines printed
	problems int64
	warnings int64
}

// event prints a change or a problem event; other events are ignored.
func (f *verifyFindings) event(ev wire.Event) {
	switch ev.Phase {
	case wire.PhaseChange:
		f.changes++
		fmt.Fprintln(f.w, changeLine(ev))
	case wire.PhaseProblem:
		label := "problem"
		if ev.Warning {
			label = "warning"
			f.warnings++
		} else {
			f.problems++
		}
		fmt.Fprintf(f.w, "%s: %s: %s\n", label, shownPath(ev.Path, ""), oneLine(ev.Problem))
	}
}

// changeLine writes one difference close to rsync --itemize-changes: a change letter (> the
// content would be copied, c a non-file would be created or changed, h a hard link, . only
// metadata, *deleting), a type letter, what differs, and the path ("/" after a folder).
func changeLine(ev wire.Event) string {
	typ := ev.Type
	if len(typ) != 1 || !strings.Contains("fdLDS", typ) {
		typ = "?"
	}
	path := shownPath(ev.Path, typ)
	what := strings.Join(ev.What, ",")
	var y byte
	switch ev.Kind {
	case "delete":
		return fmt.Sprintf("%-16s %s", "*deleting", path)
	case "create":
		y, what = 'c', "new"
		if typ == "f" {
			y = '>'
		}
	case "update":
		y = 'c'
		switch {
		case what == "links":
			y = 'h'
		case typ == "f":
			y = '>'
		}
	case "metadata":
		y = '.'
	default:
		y = '?'
	}
	if what == "" {
		what = "?"
	}
	return fmt.Sprintf("%c%s %-13s %s", y, typ, oneLine(what), path)
}

// shownPath is a path as printed: on one line, "/" after a folder.
func shownPath(p, typ string) string {
	p = oneLine(p)
	if p == "" {
		p = "."
	}
	if typ == "d" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// oneLine replaces the control characters a file name may hold, so that a line stays a line.
func oneLine(s string) string { return session.OneLine(s) }

// errVerifyFailed is the error of a verify that found differences or problems: the summary
// was printed, the exit status is 1.
type errVerifyFailed struct{ advice string }

func (e errVerifyFailed) Error() string { return e.advice }

// summarize prints the end of the output and returns the command's result.
func (f *verifyFindings) summarize(rep *wire.Report, checksum bool, advice string) error {
	if rep == nil {
		rep = &wire.Report{}
	}
	if rep.ChangesNotListed > 0 {
		fmt.Fprintf(f.w, "... and %d more differences, not listed.\n", rep.ChangesNotListed)
	}
	for _, e := range rep.Errors {
		fmt.Fprintf(f.w, "error: %s: could not be compared (%s: %s)\n", oneLine(e.Path), e.Op, oneLine(e.Error))
	}
	if n := rep.ErrorCount - int64(len(rep.Errors)); n > 0 {
		fmt.Fprintf(f.w, "error: ... and %d more files could not be compared.\n", n)
	}
	if len(rep.Features) > 0 {
		fmt.Fprintf(f.w, "Features Tails would activate on the backup: %s.\n", strings.Join(rep.Features, ", "))
	} else {
		fmt.Fprintln(f.w, "Features Tails would activate on the backup: none.")
	}
	diffs := rep.Created + rep.Updated + rep.MetadataOnly + rep.Deleted
	if diffs < f.changes+rep.ChangesNotListed {
		diffs = f.changes + rep.ChangesNotListed
	}
	problems := max(rep.Problems, f.problems)
	if diffs == 0 && problems == 0 && rep.ErrorCount == 0 {
		what := "metadata compared; add --checksum to compare the content of the files too"
		if checksum {
			what = "metadata and content compared"
		}
		fmt.Fprintf(f.w, "The backup is identical and valid (%s).\n", what)
		return nil
	}
	summary := fmt.Sprintf("%s, %s", plural(diffs, "difference"), plural(problems, "problem"))
	if rep.ErrorCount > 0 {
		summary += fmt.Sprintf(", %s could not be compared", plural(rep.ErrorCount, "file"))
	}
	fmt.Fprintln(f.w, summary+".")
	return errVerifyFailed{advice}
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// runVerify is `tails-backup verify`.
func runVerify(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "verify", verifySynopsis, verifyDescription)
	checksum := fs.Bool("checksum", false, "compare the content of every file too (reads everything: slower)")
	var skip stringList
	fs.Var(&skip, "skip", "a top-level folder of the Persistent Storage not to compare (repeatable)")
	statePath := fs.String("state", "", stateFlagHelp)
	helperCmd := fs.String("helper-command", defaultHelperCommand(), "how to run the root helper (DEVICE mode)")
	source := fs.String("source", tails.PersistentStorageMount, "the Persistent Storage to compare with (PATH mode)")
	verbose := fs.Bool("verbose", false, "log debug messages")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: give at most one device or folder, e.g. 'tails-backup verify /dev/sdb'", errUsage)
	}
	for _, s := range skip {
		if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
			return fmt.Errorf("%w: --skip %q is not a top-level folder of the Persistent Storage", errUsage, s)
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

// verifyPath compares the mounted Persistent Storage at dst with src in this process.
func verifyPath(ctx context.Context, env *environment, src, dst string, checksum bool, skip []string, log *logrus.Entry) error {
	// The folder the user gave first: its faults are the likelier, and the ones to name.
	open := func(what, p, todo string) (int, error) {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			return -1, fmt.Errorf("%s %s cannot be read: run the command as root, with sudo, to read everything", what, p)
		case errors.Is(err, unix.ENOENT):
			return -1, fmt.Errorf("%s %s does not exist: %s", what, p, todo)
		case errors.Is(err, unix.ENOTDIR):
			return -1, fmt.Errorf("%s %s is not a folder: %s", what, p, todo)
		}
		return -1, fmt.Errorf("%s %s cannot be opened (%v): %s", what, p, err, todo)
	}
	dstfd, err := open("the backup", dst, "give the folder where the backup's Persistent Storage is mounted")
	if err != nil {
		return err
	}
	defer unix.Close(dstfd)
	srcfd, err := open("the Persistent Storage", src, "unlock the Persistent Storage of this Tails, or give the folder to compare with with --source")
	if err != nil {
		return err
	}
	defer unix.Close(srcfd)
	root := os.Geteuid() == 0
	if !root {
		fmt.Fprintln(env.stderr, "Warning: not running as root, so the files only root can read (persistence.conf, Wi-Fi passwords...) are reported as errors; run it with sudo to compare everything.")
	}
	f := &verifyFindings{w: env.stdout}
	rep, err := helper.VerifyTrees(ctx, srcfd, dstfd, helper.VerifyOptions{
		Checksum: checksum,
		Exclude:  tails.MirrorExcludes(skip),
		Log:      log.WithField("component", "sync"),
	}, f.event)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("interrupted (%v), so the comparison is incomplete", ctx.Err())
		}
		return fmt.Errorf("cannot compare %s with %s (%v)", dst, src, err)
	}
	advice := "the backup is not an exact, valid copy"
	if !root && rep.ErrorCount > 0 {
		advice += "; some files could not be read: run it as root"
	}
	return f.summarize(rep, checksum, advice)
}

// verifyDevice compares the backup stick dev (or the only paired backup plugged in) through
// the root helper.
func verifyDevice(ctx context.Context, env *environment, dev string, checksum bool, skip []string, statePath, helperCmd string, log *logrus.Entry) error {
	argv := strings.Fields(helperCmd)
	if len(argv) == 0 {
		return fmt.Errorf("%w: --helper-command is empty", errUsage)
	}
	sys := env.sessionSystem()
	disks, snap, closeDisks, err := openDisks(ctx, sys, log, "verify", ", or give the folder where the backup is mounted")
	if err != nil {
		return err
	}
	defer closeDisks()
	_, state, _, err := readStateWarning(ctx, env, sys, log, statePath)
	if err != nil {
		return err
	}
	stick, err := chooseVerifyStick(snap, sys.boot, &state, dev)
	if err != nil {
		return err
	}
	name := session.Describe(stick.Stick)
	fmt.Fprintf(env.stdout, "Verifying the backup on %s.\n", name)

	v := &openStick{disks: disks, stick: stick, name: name, log: log, use: stickUse{
		command: "verify", purpose: "to verify your backup Tails", ok: "Verify",
		notDone: "was not verified", unchanged: "the backup was not verified", leaveAsFound: true, readOnly: true,
	}}
	defer func() {
		if err := v.release(ctx); err != nil {
			fmt.Fprintf(env.stderr, "Warning: %s could not be locked again (%v); eject it in the Files browser before you unplug it.\n", name, err)
		}
	}()
	if err := v.unlock(ctx); err != nil {
		return err
	}
	if err := v.mount(ctx); err != nil {
		return err
	}
	req := wire.Request{Version: wire.ProtocolVersion, Op: wire.OpVerify, Backup: stick.UUID, Checksum: checksum, Skip: skip}
	f := &verifyFindings{w: env.stdout}
	client := wire.NewHelperClient(argv, log.WithField("component", "helper"))
	rep, err := client.Run(ctx, req, f.event)
	if err != nil {
		return fmt.Errorf("%s was not verified: %w", name, session.CommandHelperError(ctx, err))
	}
	return f.summarize(rep, checksum, "plug the backup in to update it, or run 'tails-backup verify' again after the update")
}

// chooseVerifyStick picks the stick named by dev, or the only paired backup plugged in.
func chooseVerifyStick(snap *udisks.Snapshot, boot udisks.BootPaths, state *pairing.State, dev string) (session.Stick, error) {
	var paired []session.Stick
	for _, c := range session.Candidates(snap, boot) {
		if state.IsPaired(c.UUID) {
			paired = append(paired, c)
		}
	}
	st, err := session.PickStick(snap, boot, paired, dev)
	var pe *session.PickError
	if !errors.As(err, &pe) {
		return st, err
	}
	switch pe.Reason {
	case session.PickNone:
		return st, errors.New("no paired backup Tails is plugged in; plug it in and try again, or name its device, e.g. 'tails-backup verify /dev/sdb'")
	case session.PickSeveral:
		return st, fmt.Errorf("%w: %d paired backups are plugged in; say which one to verify, e.g. 'tails-backup verify %s'",
			errUsage, pe.Count, session.Device(paired[0].Stick))
	case session.PickNoDevice:
		return st, fmt.Errorf("there is no device %s; plug in the backup Tails and give its device, e.g. /dev/sdb, or the folder where it is mounted", pe.Device)
	case session.PickNotTails:
		return st, fmt.Errorf("%s is not a Tails stick (it has no Persistent Storage partition); give the device of your backup Tails", pe.Device)
	case session.PickUnfit:
		if pe.Unfit == session.UnfitBoot {
			return st, fmt.Errorf("%s is the stick this Tails is running from, so it is not a backup; give the device of your backup Tails", pe.Device)
		}
	}
	return st, fmt.Errorf("%s %s", pe.Device, session.UnfitText(pe.Unfit))
}
