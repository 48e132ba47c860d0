package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/secmem"
	"tails-backup/pairing"
	"tails-backup/pinentry"
	"tails-backup/session"
	"tails-backup/udisks"
	"tails-backup/wire"
)

const createSynopsis = "[--yes [--replace]] [--state FILE] [--helper-command CMD] [DEVICE]"

const createDescription = `Create a backup Tails on a USB stick: the stick is erased, then gets the system of this
Tails and an encrypted copy of its Persistent Storage, and is paired as its backup (it is then
updated each time you plug it in). It lists the drives plugged in and says which can be used,
shows what will be erased and asks you to type yes, then asks the passphrase of the backup's
Persistent Storage twice (the passphrase of this Tails is recommended).
DEVICE is the stick's device, e.g. /dev/sdb; it may be left out when only one stick can be used,
unless --yes is given. Use a bigger stick to move to a bigger backup.
If create is interrupted, the stick is left unfinished and not paired: run create again.`

// runCreate is `tails-backup create`: run as amnesia in the desktop session.
func runCreate(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet(env, "create", createSynopsis, createDescription)
	yes := fs.Bool("yes", false, "erase the stick without asking (DEVICE is then required)")
	replace := fs.Bool("replace", false, "with --yes: erase the stick even if it is a backup paired with this Tails")
	statePath := fs.String("state", "", stateFlagHelp)
	helperCmd := fs.String("helper-command", defaultHelperCommand(), "how to run the root helper")
	verbose := fs.Bool("verbose", false, "log debug messages")
	if done, err := parseFlags(fs, args); done {
		return err
	}
	switch {
	case fs.NArg() > 1:
		return fmt.Errorf("%w: give at most one device, e.g. 'tails-backup create /dev/sdb'", errUsage)
	case *yes && fs.NArg() == 0:
		return fmt.Errorf("%w: --yes erases without asking, so name the stick to erase, e.g. 'tails-backup create --yes /dev/sdb'", errUsage)
	case *replace && !*yes:
		return fmt.Errorf("%w: --replace only goes with --yes", errUsage)
	case len(strings.Fields(*helperCmd)) == 0:
		return fmt.Errorf("%w: --helper-command is empty", errUsage)
	}
	sys := env.sessionSystem()
	log := newLog(env, *verbose, "create")
	if session.ReadOwnMarker(sys.markerRoot).IsBackup() {
		// Its agent never updates backups: the new one would never be updated.
		return errors.New("this Tails is itself a backup, so it does not make backups; if your main Tails is lost or broken, run 'tails-backup promote' first")
	}
	used, err := sys.usedBytes(sys.markerRoot)
	if err != nil {
		return fmt.Errorf("your Persistent Storage is not unlocked (%s), so there is nothing to back up; restart Tails, unlock it in the Welcome Screen and run 'tails-backup create' again", session.Reason(err))
	}

	disks, snap, closeDisks, err := openDisks(ctx, sys, log, "create", "")
	if err != nil {
		return err
	}
	defer closeDisks()

	readPath, before, setAside, err := readStateWarning(ctx, env, sys, log, *statePath)
	if err != nil {
		return err
	}

	cands := session.CreateTargets(snap, sys.boot, used, &before)
	printCreateCandidates(env.stdout, cands, used)
	target, err := chooseCreateTarget(snap, cands, fs.Arg(0), used)
	if err != nil {
		return err
	}
	name := session.Describe(target.Stick)
	printErased(env.stdout, snap, target)
	if target.PairedUUID != "" {
		fmt.Fprintf(env.stdout, "This stick is your backup Tails: erasing it destroys that backup until the new one is ready.\n")
		if *yes && !*replace {
			return fmt.Errorf("%s is your backup Tails, so it was not erased; add --replace to erase it all the same", name)
		}
	}
	if !*yes && !confirmErase(env, name) {
		return errors.New("not confirmed, so nothing was changed (type yes to erase the stick, or use --yes)")
	}

	pass, err := askNewPassphrase(ctx, pinentry.NewPinentry(log.WithField("component", "pinentry")), name)
	if err != nil {
		return err
	}
	defer secmem.Wipe(pass)

	l, _ := session.PlanLayout(target.Facts.Size)
	c := &session.Creation{Disks: disks, Boot: sys.boot, Log: log, Name: name,
		Helper: wire.NewHelperClient(strings.Fields(*helperCmd), log.WithField("component", "helper")),
		Drive:  target.Drive.Path, Layout: l, Used: used,
		Progress: &createProgress{w: env.stdout, warn: env.stderr, terminal: env.isTerminal, steps: session.CreateSteps}}
	if err := c.Run(ctx, pass); err != nil {
		return err
	}

	// Ejected before the pairing is saved: a running agent that sees the new pairing while the
	// stick is still there would start an update of it at once, racing the lock and power-off.
	ejectErr := c.Eject(ctx)
	now := sys.now()
	err = savePairing(ctx, env, sys, log, *statePath, readPath, before, setAside, func(s *pairing.State) error {
		if target.PairedUUID != "" {
			s.Unpair(target.PairedUUID) // its LUKS volume was erased
		}
		if err := s.Pair(pairing.PairedBackup{UUID: c.UUID, Label: session.Label(target.Stick), Size: target.Facts.Size, Added: now}); err != nil {
			return err
		}
		s.RecordAttempt(pairing.Attempt{Time: now, Backup: c.UUID, Result: pairing.ResultSuccess})
		return nil
	})
	if err != nil {
		return fmt.Errorf("the backup Tails on %s is complete, but it is not paired because %w; then plug it in and run 'tails-backup pair %s' to pair it", name, err, session.Device(target.Stick))
	}
	if ejectErr != nil {
		fmt.Fprintln(env.stdout, "Your backup Tails is ready and paired.")
		fmt.Fprintf(env.stderr, "Warning: %s could not be ejected (%s); eject it in the Files browser before you unplug it.\n", name, session.Reason(ejectErr))
		return nil
	}
	fmt.Fprintln(env.stdout, "Your backup Tails is ready: you can unplug it. From now on, plug it in to update it; if this Tails is lost or broken, start on the backup.")
	return nil
}

// statfsUsed is the space the files of the file system mounted at dir take: what the Persistent
// Storage of this Tails holds. ext4 leaves its own metadata out of these counts.
func statfsUsed(dir string) (uint64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return (st.Blocks - st.Bfree) * uint64(st.Bsize), nil
}

func printCreateCandidates(w io.Writer, cands []session.CreateTarget, used uint64) {
	if len(cands) == 0 {
		return // chooseCreateTarget says that no stick is plugged in
	}
	fmt.Fprintln(w, "Drives plugged in:")
	for _, c := range cands {
		what := ""
		if c.What != "" {
			what = ", " + c.What
		}
		verdict := "can be used"
		if c.Reason != "" {
			verdict = "cannot be used: " + c.Reason
		}
		fmt.Fprintf(w, "  %-10s %s, %s%s: %s\n", deviceOrNone(c.Stick), session.Label(c.Stick), sizeText(c.Facts.Size), what, verdict)
	}
	fmt.Fprintf(w, "Your Persistent Storage holds %s: a backup of this Tails needs a USB stick of at least %s.\n",
		sizeText(used), sizeText(session.NeededStickSize(0, used)))
}

func deviceOrNone(st udisks.Stick) string {
	if d := session.Device(st); d != "" {
		return d
	}
	return "(no medium)"
}

// chooseCreateTarget picks the drive named by dev (a device such as /dev/sdb, sdb, or one of
// its partitions), or the only eligible one when dev is "".
func chooseCreateTarget(snap *udisks.Snapshot, cands []session.CreateTarget, dev string, used uint64) (session.CreateTarget, error) {
	if dev == "" && len(cands) == 0 {
		return session.CreateTarget{}, fmt.Errorf("no USB stick is plugged in: plug in the USB stick to make the backup on (at least %s), then run 'tails-backup create' again", sizeText(session.NeededStickSize(0, used)))
	}
	var ok []session.CreateTarget
	for _, c := range cands {
		if c.Reason == "" {
			ok = append(ok, c)
		}
	}
	c, err := session.Pick(ok, dev, func(dev string) (session.CreateTarget, error) {
		o := snap.ByDevice(dev)
		var drive *udisks.Object
		if o != nil {
			drive = snap.DriveOf(o.Path)
		}
		for _, c := range cands {
			if drive == nil || c.Drive.Path != drive.Path {
				continue
			}
			if c.Reason != "" {
				return session.CreateTarget{}, &session.PickError{Reason: session.PickRefused, Device: dev, Why: c.Reason}
			}
			return c, nil
		}
		return session.CreateTarget{}, &session.PickError{Reason: session.PickNoDevice, Device: dev}
	})
	var pe *session.PickError
	if !errors.As(err, &pe) {
		return c, err
	}
	switch pe.Reason {
	case session.PickNone:
		return c, errors.New("no USB stick plugged in can hold a backup of this Tails; plug in a USB stick big enough (see above) and try again")
	case session.PickSeveral:
		return c, fmt.Errorf("%w: %d USB sticks can be used; say which one to erase, e.g. 'tails-backup create %s'",
			errUsage, pe.Count, session.Device(ok[0].Stick))
	case session.PickRefused:
		return c, fmt.Errorf("%s cannot be used: %s", pe.Device, pe.Why)
	}
	return c, fmt.Errorf("there is no USB stick %s; run 'tails-backup create' without a device to list the drives plugged in", pe.Device)
}

// printErased shows what erasing the target destroys: each partition with its number, size,
// GPT name and file system.
func printErased(w io.Writer, snap *udisks.Snapshot, c session.CreateTarget) {
	fmt.Fprintf(w, "Everything on %s will be erased:\n", session.Describe(c.Stick))
	disk := c.Stick.Disk
	parts := snap.Partitions(disk.Path)
	if len(parts) == 0 {
		if disk.Block != nil && disk.Block.IdType != "" {
			fmt.Fprintf(w, "  the whole stick: %s\n", contentText(snap, disk))
		} else {
			fmt.Fprintln(w, "  no partitions")
		}
		return
	}
	for _, p := range parts {
		name := ""
		if p.Partition.Name != "" {
			name = fmt.Sprintf(", named %q", oneLine(p.Partition.Name))
		}
		fmt.Fprintf(w, "  partition %d: %s%s, %s\n", p.Partition.Number, sizeText(p.Partition.Size), name, contentText(snap, p))
	}
}

// contentText says what a block holds: "FAT file system labelled "Tails"", "encrypted (LUKS)".
func contentText(snap *udisks.Snapshot, o *udisks.Object) string {
	b := o.Block
	if b == nil || b.IdType == "" {
		return "no file system"
	}
	if b.IdUsage == "crypto" {
		s := "encrypted (LUKS)"
		if ct := snap.Cleartext(o.Path); ct != nil && ct.Block != nil && ct.Block.IdLabel != "" {
			s += fmt.Sprintf(", holding a file system labelled %q", oneLine(ct.Block.IdLabel))
		}
		return s
	}
	s := fsTypeText(b.IdType) + " file system"
	if b.IdLabel != "" {
		s += fmt.Sprintf(" labelled %q", oneLine(b.IdLabel))
	}
	return s
}

func fsTypeText(t string) string {
	switch t {
	case "vfat":
		return "FAT"
	case "ntfs", "exfat":
		return strings.ToUpper(t)
	}
	return oneLine(t)
}

// confirmErase asks to type yes: erasing a stick is not undone by a stray y.
func confirmErase(env *environment, name string) bool {
	fmt.Fprintf(env.stdout, "Type yes to erase %s and make it your backup Tails: ", name)
	line, _ := bufio.NewReader(io.LimitReader(env.stdin, 1024)).ReadString('\n')
	if !strings.HasSuffix(line, "\n") {
		fmt.Fprintln(env.stdout) // no answer: end the question's line
	}
	return strings.EqualFold(strings.TrimSpace(line), "yes")
}

// newPassphraseTries is how many times the passphrase may be typed differently twice.
const newPassphraseTries = 3

var (
	errPassphrasesDiffer = errors.New("the two passphrases were different")
	errPassphraseEmpty   = errors.New("the passphrase was empty")
)

// askNewPassphrase asks the passphrase of the backup's Persistent Storage twice, until both are
// the same. The caller clears the result.
func askNewPassphrase(ctx context.Context, asker pinentry.PassphraseAsker, name string) ([]byte, error) {
	first := pinentry.Prompt{
		Title: "Tails Backup",
		Description: fmt.Sprintf("Choose the passphrase of the Persistent Storage of your backup Tails on %s. "+
			"We recommend the passphrase of this Tails: it is the one you will remember on the day you need the backup.", name),
		Prompt: "Passphrase:",
		OK:     "Next",
	}
	again := pinentry.Prompt{
		Title:       "Tails Backup",
		Description: fmt.Sprintf("Type the passphrase of the Persistent Storage of your backup Tails on %s again, to check it.", name),
		Prompt:      "Passphrase:",
		OK:          "Create",
	}
	var err error
	for range newPassphraseTries {
		var pass, check []byte
		if pass, err = asker.AskPassphrase(ctx, first); err != nil {
			break
		}
		if len(pass) == 0 {
			secmem.Wipe(pass)
			first.Error = "The passphrase is empty: type a passphrase."
			err = errPassphraseEmpty
			continue
		}
		if check, err = asker.AskPassphrase(ctx, again); err != nil {
			secmem.Wipe(pass)
			break
		}
		same := subtle.ConstantTimeCompare(pass, check) == 1
		secmem.Wipe(check)
		if same {
			return pass, nil
		}
		secmem.Wipe(pass)
		first.Error = "The two passphrases were different. Type the passphrase again, twice."
		err = errPassphrasesDiffer
	}
	var execErr *exec.Error
	switch {
	case errors.Is(err, pinentry.ErrPinentryCancelled):
		return nil, errors.New("the passphrase was not given, so nothing was changed")
	case ctx.Err() != nil:
		return nil, errors.New("interrupted, so nothing was changed")
	case errors.As(err, &execErr):
		return nil, fmt.Errorf("the passphrase dialog could not be shown (%v), so nothing was changed; run 'tails-backup create' in the Tails desktop session", err)
	case errors.Is(err, errPassphraseEmpty):
		return nil, fmt.Errorf("the passphrase was empty %d times, so nothing was changed; run 'tails-backup create' again and type a passphrase", newPassphraseTries)
	case errors.Is(err, errPassphrasesDiffer):
		return nil, fmt.Errorf("the two passphrases were different %d times, so nothing was changed; run 'tails-backup create' again and type the same passphrase twice", newPassphraseTries)
	}
	return nil, fmt.Errorf("the passphrase could not be asked (%s), so nothing was changed; run 'tails-backup create' again", session.Reason(err))
}

// savePairing records the new backup with change (session.SavePairing), in the store where it
// is now; what was read from readPath before comes along if it moved.
func savePairing(ctx context.Context, env *environment, sys sessionSystem, log *logrus.Entry, flagPath, readPath string, before pairing.State, beforeDamaged bool, change func(*pairing.State) error) error {
	store, err := storeAt(flagPath, sys, log)()
	if err != nil {
		return err
	}
	return session.SavePairing(ctx, store, readPath, before, beforeDamaged, func(se *pairing.StateError) { warnStateError(env.stderr, se) }, change)
}
