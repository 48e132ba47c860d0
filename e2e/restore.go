package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"tails-backup/tails"
)

// Restore for real (issue 11): the main Tails stick is lost; Tails is installed on a new
// stick, with a new, empty Persistent Storage; the backup made by create and kept current by
// the scenarios before brings everything back with 'tails-backup restore'.

// NewTailsPassphrase is the passphrase of the Persistent Storage of the new Tails stick.
const NewTailsPassphrase = "new stick passphrase 7"

// StickLost is the lost stick, found again for the checks: plugged in as a USB stick and
// opened read-only only.
const StickLost = "lost"

// bootDev is the boot disk in the guest, whichever image it is (the udev rules match its
// serial, as Tails matches the device it booted from).
const bootDev = "/dev/disk/by-id/virtio-" + BootSerial

// shutdownTails undoes what boot-tails did, as shutting Tails down does: the features'
// mounts and links, the Persistent Storage (unmounted, locked), the system partition. What
// Tails forgets at shutdown goes too: the links into the Persistent Storage (dotfiles, at any
// depth) and the session's own pairing store, kept in the home folder when the Persistent
// Storage has no tails-backup folder. The agent must be stopped.
func (w *World) shutdownTails(ctx context.Context) error {
	script := `set -e
for m in $(findmnt -rn -o TARGET | grep -E '^/home/amnesia/|^/etc/NetworkManager/' | sort -r); do umount "$m"; done
umount ` + persistenceMount + `
cryptsetup close TailsData_unlocked
umount ` + mediumMount + `
find /home/amnesia -type l -lname '` + persistenceMount + `/*' -delete
rm -rf /home/amnesia/.config/tails-backup
`
	_, err := w.G.Root(ctx, "sh", "-c", script)
	return err
}

// swapBootDisk pulls the disk the simulated Tails runs from (after shutdownTails) and puts
// the raw image file in its place, with the same serial: the guest's udev rules give it the
// properties of the stick Tails runs from (UDISKS_SYSTEM=1, and UDISKS_IGNORE=1 on its
// TailsData), as Tails gives them to whichever stick it booted from.
func (w *World) swapBootDisk(ctx context.Context, file string) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if err := w.VM.QMP.UnplugVirtioDisk(ctx, w.Boot); err != nil {
		return fmt.Errorf("unplug the boot disk: %w", err)
	}
	// udev removes the disk's links after QEMU has seen the guest let it go: no event
	// reaches the driver for it, short polls.
	gone := Cmd{Argv: []string{"sh", "-c", "udevadm settle && ! test -e " + bootDev}}
	if err := w.G.WaitUntil(ctx, 300*time.Millisecond, gone); err != nil {
		return fmt.Errorf("the old boot disk did not go: %w", err)
	}
	w.Boot = &VirtioDisk{ID: BootDiskID, File: file, Serial: BootSerial}
	if err := w.VM.QMP.PlugVirtioDisk(ctx, w.Boot); err != nil {
		return fmt.Errorf("plug the boot disk: %w", err)
	}
	there := Cmd{Argv: []string{"sh", "-c", "udevadm settle && test -b " + bootDev}}
	if err := w.G.WaitUntil(ctx, 300*time.Millisecond, there); err != nil {
		return fmt.Errorf("the new boot disk did not come: %w", err)
	}
	return nil
}

// checkBootFacts checks that udev gives the boot disk and its TailsData what Tails gives the
// stick it runs from.
func (w *World) checkBootFacts(ctx context.Context) error {
	for dev, want := range map[string]string{bootDev: "UDISKS_SYSTEM=1", bootDev + "-part2": "UDISKS_IGNORE=1"} {
		out, err := w.G.Root(ctx, "udevadm", "info", "-q", "property", "-n", dev)
		if err != nil {
			return err
		}
		if !slices.Contains(strings.Split(out, "\n"), want) {
			return fmt.Errorf("udev does not give %s %s, as Tails does to the stick it runs from:\n%s", dev, want, out)
		}
	}
	return nil
}

// restoreRun is what the user saw of 'tails-backup restore'.
type restoreRun struct {
	out       string
	err       error
	plugToEnd time.Duration // from the plug of the backup to the end of the command
	whole     time.Duration
}

// ScenarioRestoreLostStick (14): the main stick is lost; a new Tails stick with a fresh,
// empty Persistent Storage runs; the user runs 'tails-backup restore' and plugs in the
// backup. The restored Persistent Storage must be the lost stick's (rsync with checksums
// against the lost stick, found again and opened read-only), persistence.conf Tails' own file
// with the lost stick's lines, the features Tails turns on at the next start there, the backup
// unchanged (sha256 of its image), the root of the new Persistent Storage as Tails made it.
// At the end the lost stick is "found": the guest runs from it again, as before the scenario,
// for the scenarios after it.
func (w *World) ScenarioRestoreLostStick(ctx context.Context) error {
	backup := w.Sticks[StickBackup]
	lostFile := w.Boot.File

	w.Say.Logf("A week of use; you plug in your backup and it is updated, as every week.")
	// Seed 0: a week's changes delete the photo IMG_(1010+seed) of the fill (1000 to 1019),
	// and seeds 1 to 9 are the other scenarios' weeks.
	if err := w.ChangeData(ctx, 0, 8<<20); err != nil {
		return err
	}
	if _, err := w.PlugAndUpdate(ctx, backup.Passphrase); err != nil {
		return err
	}
	lostConf, err := w.G.Root(ctx, "cat", persistenceMount+"/"+tails.PersistenceConfName)
	if err != nil {
		return err
	}
	lostUUID, err := w.G.Root(ctx, "cryptsetup", "luksUUID", bootDev+"-part2")
	if err != nil {
		return err
	}
	version, err := w.G.Root(ctx, "cat", "/etc/amnesia/version")
	if err != nil {
		return err
	}
	version = strings.TrimSpace(version)

	// The stick is lost: the guest shuts "Tails" down, the stick goes, a new one comes, on
	// which Tails is installed and a Persistent Storage created, as the user would.
	w.Say.Logf("Your Tails USB stick is lost. You install Tails %s on a new USB stick, start it and create its Persistent Storage, with a new passphrase: it holds the empty Persistent Folder only.", version)
	t := time.Now()
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	if err := w.shutdownTails(ctx); err != nil {
		return err
	}
	newFile := filepath.Join(w.Dir, "new-tails.img")
	if err := sparseFile(newFile, 1536<<20); err != nil {
		return err
	}
	if err := w.swapBootDisk(ctx, newFile); err != nil {
		return err
	}
	// The lost stick is found again at the end and Tails runs from it: the checks open it
	// read-only only, and its image must come back byte for byte.
	lostSum, err := Sha256(lostFile)
	if err != nil {
		return err
	}
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "make-tails", "--data", "fresh", "--version", version, bootDev}, Stdin: NewTailsPassphrase}); err != nil {
		return err
	}
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "boot-tails", bootDev}, Stdin: NewTailsPassphrase}); err != nil {
		return err
	}
	if err := w.checkBootFacts(ctx); err != nil {
		return err
	}
	newUUID, err := w.G.Root(ctx, "cryptsetup", "luksUUID", bootDev+"-part2")
	if err != nil {
		return err
	}
	if strings.TrimSpace(newUUID) == strings.TrimSpace(lostUUID) {
		return fmt.Errorf("the new Persistent Storage has the LUKS UUID of the lost one, %s", lostUUID)
	}
	if err := w.StartAgent(ctx); err != nil {
		return err
	}
	w.Log.Logf("timing: the new Tails stick made and started in %s (Persistent Storage %s; the lost one was %s)", round(time.Since(t)), strings.TrimSpace(newUUID), strings.TrimSpace(lostUUID))

	// The restore, as the user guide says: the command first, then the backup.
	before, err := Sha256(backup.File)
	if err != nil {
		return err
	}
	seq, err := w.LastSeq(ctx)
	if err != nil {
		return err
	}
	if err := w.SetPinentry(ctx, backup.Passphrase); err != nil {
		return err
	}
	w.Say.Logf("You run 'tails-backup restore' in a terminal, then plug in your backup when it asks, type its passphrase, and type restore when it asks.")
	run, err := w.restoreLost(ctx, backup)
	w.Log.Logf("tails-backup restore (%s; %s from the plug of the backup to its end):\n%s", round(run.whole), round(run.plugToEnd), run.out)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	if run.err != nil {
		return w.explain(ctx, seq, fmt.Errorf("tails-backup restore failed: %w", run.err))
	}
	w.Log.Logf("timing: restore %s from the plug of the backup (the whole command %s)", round(run.plugToEnd), round(run.whole))
	w.Say.Logf("%s after you plugged in the backup, it says: %q", round(run.plugToEnd), restoredLine(run.out))
	if _, err := w.WaitDrive(ctx, backup, "locked", time.Minute); err != nil {
		return fmt.Errorf("the backup was not locked again after the restore: %w", err)
	}
	if err := w.Unplug(ctx, backup); err != nil {
		return err
	}
	after, err := Sha256(backup.File)
	if err != nil {
		return err
	}
	var problems []string
	if after != before {
		problems = append(problems, fmt.Sprintf("the restore changed the backup: the sha256 of its image is %s, it was %s", after, before))
	}
	// During a restore the agent shows nothing about the backup (user guide: not updated,
	// nothing shown), and it is not this Tails' backup anyway.
	if notes, err := w.Notes(ctx, seq); err != nil {
		return err
	} else {
		for _, n := range notes {
			problems = append(problems, fmt.Sprintf("a notification came during the restore: %q, %q", n.Summary, n.Body))
		}
	}
	for _, want := range []string{"Plug in your backup Tails now", "This backup was made from another Tails (Persistent Storage " + strings.TrimSpace(lostUUID) + ")",
		"Type restore to restore from this backup of another Tails", "Restart Tails to use everything that was restored."} {
		if !strings.Contains(run.out, want) {
			problems = append(problems, fmt.Sprintf("the restore did not say %q", want))
		}
	}
	features, err := w.checkRestored(ctx, lostFile, lostConf, run.out)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	w.Say.Logf("Checked: your new Persistent Storage is the lost one's, file for file (rsync with checksums against the lost stick, found again and opened read-only); persistence.conf is Tails' own file with your lines; the backup is unchanged (its image's sha256 %s…).", before[:16])

	// Restart Tails: the features are turned on at startup.
	w.Say.Logf("You restart Tails and unlock the new Persistent Storage.")
	if err := w.restartTails(ctx, NewTailsPassphrase); err != nil {
		return err
	}
	out, err := w.G.Root(ctx, "sh", "-c", activatedScript)
	w.Log.Logf("features after the restart:\n%s", out)
	if err != nil {
		return err
	}
	if err := checkActivated(out, features); err != nil {
		return err
	}
	w.Say.Logf("Tails turns on %s: your folders, mail, keys, Wi-Fi passwords and dotfiles are back.", strings.Join(features, ", "))

	// The lost stick is found: the guest runs from it again, for the scenarios after this one.
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	if err := w.shutdownTails(ctx); err != nil {
		return err
	}
	if sum, err := Sha256(lostFile); err != nil {
		return err
	} else if sum != lostSum {
		return fmt.Errorf("the checks changed the lost stick, opened read-only: the sha256 of its image is %s, it was %s", sum, lostSum)
	}
	if err := w.swapBootDisk(ctx, lostFile); err != nil {
		return err
	}
	return w.bootTails(ctx, MainPassphrase)
}

// restoreLost runs 'tails-backup restore' in the terminal, and plugs the backup in once the
// command has paused the automatic updates (the user guide's order: the command first);
// the user types restore at its question (a backup of another Tails).
func (w *World) restoreLost(ctx context.Context, backup *Stick) (restoreRun, error) {
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		out, err := w.TerminalInput(ctx, "restore\n", "tails-backup", "restore")
		done <- result{out, err}
	}()
	// The pause is in the pairing store of this Tails: its Persistent Storage has no
	// tails-backup folder yet, so in the home folder (agent.DefaultStatePath). No event says
	// it is written: short polls, while the command runs.
	paused := Cmd{Argv: []string{"sh", "-c", `grep -qs '"restore [0-9]*"' /home/amnesia/.config/tails-backup/state.json ` + persistenceMount + `/tails-backup/state.json`}}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	werr := w.G.WaitUntil(wctx, 300*time.Millisecond, paused)
	cancel()
	if werr != nil {
		select {
		case r := <-done:
			return restoreRun{out: r.out, err: r.err, whole: time.Since(start)}, fmt.Errorf("the restore ended before it paused the updates: %v", r.err)
		default:
		}
		return restoreRun{}, fmt.Errorf("the restore did not pause the automatic updates: %w", werr)
	}
	if err := w.Plug(ctx, backup); err != nil {
		return restoreRun{}, err
	}
	plugged := time.Now()
	select {
	case r := <-done:
		return restoreRun{out: r.out, err: r.err, plugToEnd: time.Since(plugged), whole: time.Since(start)}, nil
	case <-ctx.Done():
		return restoreRun{}, ctx.Err()
	}
}

// restoredLine is the line of the restore's output that says what it did.
func restoredLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Restored:") {
			return l
		}
	}
	return lastLine(out)
}

// featuresLine is what the restore says Tails turns on at the next start.
var featuresLine = regexp.MustCompile(`(?m)^Features Tails will turn on at the next start: (.*)\.$`)

// checkRestored compares, with the backup unplugged and the agent stopped, the restored
// Persistent Storage with the lost stick's (lostFile, plugged in as a USB stick and opened
// read-only): rsync with checksums, persistence.conf, the root, the features. lostConf is the
// lost stick's persistence.conf, out what the restore said. It returns the names of the
// features Tails turns on.
//
// Left out of the comparison, as the product documents it (helper/restore.go, user guide
// "What is not restored"): the tails-backup folder, where Tails Backup keeps the pairings of
// the Tails it belongs to: the lost stick's names its backup, the new Tails keeps its own (it
// has none); the tails-backup-keys folder, the keys of updates without the passphrase,
// which never reach a backup (the lost stick's open the backup it was restored from); and the
// tails-backup-cache folder, the xattr cache of updates onto a backup, which a lost stick that
// was once a backup (promoted since) may hold. The backup marker is not left out: the lost
// stick had none, and the restored
// Persistent Storage must have none either (a main Tails must not become a backup).
func (w *World) checkRestored(ctx context.Context, lostFile, lostConf, out string) ([]string, error) {
	lost := &Stick{ID: StickLost, Serial: "LOSTTAILS1", File: lostFile, Passphrase: MainPassphrase}
	w.Sticks[StickLost] = lost
	// withStick opens the lost stick read-only at $PS; R is the restored Persistent Storage.
	script := `R=` + persistenceMount + `
rsync -aHAXS --numeric-ids --checksum -n -i --delete --exclude=/tails-backup/ --exclude=/tails-backup-keys/ --exclude=/tails-backup-cache/ $PS/ $R/
echo "--- conf"
stat -c '%F %u:%g %a %h' $R/persistence.conf
getfacl --skip-base -c $R/persistence.conf
cmp $PS/persistence.conf $R/persistence.conf && echo "same as the lost stick's"
echo "--- root"
stat -c '%u:%g %a' $R
getfacl -cn $R
echo "--- sources"
tab=$(printf '\t')
while IFS="$tab" read -r dest opts; do
	src=$(printf '%s\n' "$opts" | tr ',' '\n' | sed -n 's/^source=//p')
	if [ -d "$R/$src" ] && [ ! -L "$R/$src" ]; then echo "folder $src"; else echo "missing $src"; fi
done <$R/persistence.conf
`
	t := time.Now()
	res, runErr := w.withStick(ctx, lost, false, script)
	w.Log.Logf("check against the lost stick (%s):\n%s", round(time.Since(t)), res)
	delete(w.Sticks, StickLost)
	if runErr != nil {
		return nil, fmt.Errorf("check against the lost stick: %w", runErr)
	}
	diff, rest, _ := strings.Cut(res, "--- conf\n")
	conf, rest, _ := strings.Cut(rest, "--- root\n")
	root, sources, _ := strings.Cut(rest, "--- sources\n")
	var problems []string
	if strings.TrimSpace(diff) != "" {
		problems = append(problems, "the restored Persistent Storage differs from the lost stick's (rsync -aHAXS --checksum -n -i --delete):\n"+diff)
	}
	// Tails activates persistence.conf only as a regular file of tails-persistent-storage
	// (115:122), mode exactly 0600, no ACL (TAILS-FACTS.md).
	wantConf := fmt.Sprintf("regular file %d:%d 600 1\nsame as the lost stick's\n", tails.PersistentStorageUID, tails.PersistentStorageGID)
	if conf != wantConf {
		problems = append(problems, fmt.Sprintf("persistence.conf is not Tails' own file with the lost stick's lines: %q, want %q", conf, wantConf))
	}
	// The root keeps what Tails gave it: root:root 0770, amnesia (1000) may only traverse.
	wantRoot := "0:0 770\nuser::rwx\nuser:1000:--x\ngroup::rwx\nmask::rwx\nother::---\n"
	if strings.TrimSpace(root) != strings.TrimSpace(wantRoot) {
		problems = append(problems, fmt.Sprintf("the root of the restored Persistent Storage is not as Tails makes it: %q, want %q", root, wantRoot))
	}
	for _, l := range strings.Split(strings.TrimSpace(sources), "\n") {
		if !strings.HasPrefix(l, "folder ") {
			problems = append(problems, fmt.Sprintf("a feature's folder is not on the restored Persistent Storage: %q", l))
		}
	}
	// What Tails turns on: each line of the lost stick's persistence.conf that is one of
	// Tails' features, by the product's reading of Tails' settings (tails.FeatureOfBinding),
	// compared with what the restore said.
	bindings, err := tails.ParsePersistenceConf(strings.NewReader(lostConf))
	if err != nil {
		return nil, fmt.Errorf("the lost stick's persistence.conf: %w", err)
	}
	var want []string
	for _, b := range bindings {
		f, ok := tails.FeatureOfBinding(b)
		if !ok {
			return nil, fmt.Errorf("the lost stick's persistence.conf has a line that is no feature of Tails: %+v", b)
		}
		if !slices.Contains(want, f.Name) {
			want = append(want, f.Name)
		}
	}
	if len(want) < 2 {
		return nil, fmt.Errorf("the lost stick's persistence.conf has %d features, the test needs a user's several: %q", len(want), lostConf)
	}
	m := featuresLine.FindStringSubmatch(out)
	var said []string
	if m != nil {
		said = strings.Split(m[1], ", ")
	}
	if !sameSet(said, want) {
		problems = append(problems, fmt.Sprintf("the restore says Tails turns on %q, the lost stick's persistence.conf has %q", said, want))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	w.Log.Logf("restored: identical to the lost stick; features %s", strings.Join(want, ", "))
	return want, nil
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

// restartTails restarts the simulated Tails on its boot disk, with the passphrase of its
// Persistent Storage: the features of persistence.conf are turned on at startup (boot-tails
// does what live-persist does).
func (w *World) restartTails(ctx context.Context, passphrase string) error {
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	if err := w.shutdownTails(ctx); err != nil {
		return err
	}
	return w.bootTails(ctx, passphrase)
}

// bootTails starts the simulated Tails on its boot disk, its Persistent Storage unlocked with
// passphrase (boot-tails does what live-persist does), checks what Tails sets up at boot, and
// starts the agent.
func (w *World) bootTails(ctx context.Context, passphrase string) error {
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "boot-tails", bootDev}, Stdin: passphrase}); err != nil {
		return err
	}
	if err := w.checkBootFacts(ctx); err != nil {
		return err
	}
	return w.StartAgent(ctx)
}

// activatedScript says, for each line of the running Tails' persistence.conf, whether the
// feature is on: a folder bind-mounted from the Persistent Storage on its destination, or, for
// a "link" line, each of its files linked into its destination.
const activatedScript = `PS=` + persistenceMount + `
tab=$(printf '\t')
while IFS="$tab" read -r dest opts; do
	src=$(printf '%s\n' "$opts" | tr ',' '\n' | sed -n 's/^source=//p')
	if printf '%s\n' "$opts" | tr ',' '\n' | grep -qx link; then
		bad=$(find "$PS/$src" -mindepth 1 ! -type d | while read -r f; do [ "$(readlink "$dest/${f#$PS/$src/}")" = "$f" ] || echo "$f"; done)
		n=$(find "$PS/$src" -mindepth 1 ! -type d | wc -l)
		if [ -z "$bad" ] && [ "$n" -gt 0 ]; then echo "on $src linked into $dest ($n files)"; else echo "off $src: not linked into $dest: $bad"; fi
	else
		got=$(findmnt -n -o SOURCE,FSROOT --mountpoint "$dest" | tr -s ' ')
		case "$got" in
		"/dev/mapper/TailsData_unlocked[/$src] /$src"|"/dev/mapper/TailsData_unlocked /$src") echo "on $src mounted on $dest";;
		*) echo "off $src: $dest is $got";;
		esac
	fi
done <$PS/persistence.conf
`

// checkActivated checks activatedScript's output: every line on, as many as the features.
func checkActivated(out string, features []string) error {
	var off []string
	on := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "on ") {
			on++
		} else {
			off = append(off, l)
		}
	}
	if len(off) > 0 || on < len(features) {
		return fmt.Errorf("after the restart, Tails did not turn on every feature (%d on, %d features): %q", on, len(features), off)
	}
	return nil
}
