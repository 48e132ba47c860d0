package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"tails-backup/e2e/proto"
)

// The scenarios of issue 6, run one after the other on one World. Each says what a person
// would see (Say), records timings (Log), and returns an error when what the user sees or what
// is on disk is not what it should be.

// Texts the user sees (agent/texts.go), as the scenarios expect them.
const (
	noteUpdating     = "Updating your backup Tails"
	noteUpdatingBody = "Enter the passphrase of your backup Tails to start."
	noteDone         = "Backup updated: you can unplug it"
	noteUnplugged    = "Your backup Tails was unplugged during the update"
	noteNotYours     = "This Tails USB stick is not your backup"
	noteBackupTails  = "This is a backup Tails"
	wrongPassText    = "Wrong passphrase. Try again: it is the passphrase of the backup's Persistent Storage."
)

// Stick IDs.
const (
	StickBackup   = "backup"   // made by create (scenario 1), the backup of the scenarios after it
	StickSecond   = "second"   // a Tails stick with its own Persistent Storage, paired with pair
	StickUnpaired = "unpaired" // a Tails stick never paired
)

const updateTimeout = 10 * time.Minute

// PrepareSticks makes, with the agent stopped, the Tails sticks a user would have: a second
// Tails stick with a fresh Persistent Storage of its own (to be paired) and another Tails stick
// that is not paired. Both end unplugged.
func (w *World) PrepareSticks(ctx context.Context) error {
	specs := []struct {
		id, serial string
		size       int64
		args       []string
	}{
		{StickSecond, "SECOND0001", 1536 << 20, []string{"--medium-from", mediumMount, "--data", "fresh"}},
		{StickUnpaired, "OTHER0002", 640 << 20, []string{"--version", w.Leg.Old, "--data", "fresh"}},
	}
	for _, s := range specs {
		if w.Leg.Tails >= 7 && s.id == StickSecond {
			// A Tails 7 stick has files of its own on its system partition (in another
			// language than the running stick's): pairing and updates must keep them.
			s.args = append(s.args, "--stick-files", "fr_FR")
		}
		start := time.Now()
		st, err := w.NewStick(s.id, s.serial, s.size)
		if err != nil {
			return err
		}
		st.Passphrase = BackupPassphrase
		ds, err := w.PlugAndWait(ctx, st)
		if err != nil {
			return err
		}
		argv := append([]string{guestTool, "make-tails"}, append(s.args, ds.Device)...)
		if _, err := w.G.Run(ctx, Cmd{Argv: argv, Stdin: st.Passphrase}); err != nil {
			return err
		}
		if err := w.Unplug(ctx, st); err != nil {
			return err
		}
		w.Log.Logf("timing: Tails stick %s made in %s", s.id, round(time.Since(start)))
	}
	return nil
}

// Pair pairs the second Tails stick the way the user does: plug it in, run 'tails-backup pair',
// type its passphrase; the agent then updates it. The stick ends unplugged.
func (w *World) Pair(ctx context.Context) error {
	st := w.Sticks[StickSecond]
	w.Say.Logf("You plug in another Tails USB stick, with a Persistent Storage of its own, and run 'tails-backup pair' to make it a backup too.")
	seq, err := w.PlugAnswering(ctx, st, st.Passphrase)
	if err != nil {
		return err
	}
	ds, err := w.WaitDrive(ctx, st, "present", time.Minute)
	if err != nil {
		return err
	}
	// Not paired yet: the agent only says how to pair it.
	if _, err := w.WaitNote(ctx, seq, noteNotYours, "tails-backup pair", time.Minute); err != nil {
		return err
	}
	seq, err = w.LastSeq(ctx)
	if err != nil {
		return err
	}
	paired := time.Now()
	out, err := w.Terminal(ctx, "tails-backup", "pair", "--yes", ds.Device)
	w.Log.Logf("tails-backup pair:\n%s", out)
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Paired.") {
		return fmt.Errorf("tails-backup pair did not say it paired the stick: %q", out)
	}
	w.Say.Logf("It says: %q", lastLine(out))
	// pair locks the stick before it saves the pairing, so the agent does not start an update
	// that would collide with it; the agent looks at the store when udisks tells it something,
	// so the first update comes at the next plug (or, rarely, at a late event of the lock).
	if err := w.Unplug(ctx, st); err != nil {
		return err
	}
	if seq, err = w.LastSeq(ctx); err != nil {
		return err
	}
	if err := w.Plug(ctx, st); err != nil {
		return err
	}
	found, err := w.WaitNote(ctx, seq, noteUpdating, "", 2*time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	w.Say.Logf("You unplug it and plug it in again: %s after you ran pair, its first update starts: %q. It copies all your Persistent Storage.", round(time.Since(paired)), found.Summary)
	started := time.Now()
	done, err := w.WaitNote(ctx, seq, noteDone, "", updateTimeout)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	w.Say.Logf("%s later: %q, %q", round(time.Since(started)), done.Summary, done.Body)
	w.Log.Logf("timing: pair to the first update's start %s, first update %s", round(started.Sub(paired)), round(time.Since(started)))
	if err := w.checkEjected(ctx, st); err != nil {
		return err
	}
	return w.Unplug(ctx, st)
}

// UpdateResult is what an automatic update looked like.
type UpdateResult struct {
	PlugToStart time.Duration // from the plug to the "Updating your backup Tails" notification
	Update      time.Duration // from that notification to "Backup updated"
	First       proto.Notification
	Done        proto.Notification
	Notes       []proto.Notification
}

// updateTexts are the notifications an update is recognised by: the title and text of the
// first one, and the title of the last. A body that is "" matches any.
type updateTexts struct{ updating, updatingBody, done string }

// englishUpdate are the English texts of an update that asks the passphrase (or needs none).
var englishUpdate = updateTexts{noteUpdating, noteUpdatingBody, noteDone}

// PlugAndUpdate plugs the paired backup with the passphrase dialog scripted with answers,
// waits for the automatic update to finish, checks that the stick ends locked and powered off,
// and unplugs it.
func (w *World) PlugAndUpdate(ctx context.Context, answers ...string) (UpdateResult, error) {
	return w.plugAndUpdate(ctx, nil, answers...)
}

// plugAndUpdate is PlugAndUpdate, with during (if not nil) run once the update has started.
func (w *World) plugAndUpdate(ctx context.Context, during func(context.Context) error, answers ...string) (UpdateResult, error) {
	return w.plugAndUpdateSaying(ctx, englishUpdate, during, answers...)
}

// plugAndUpdateSaying is plugAndUpdate, the update's notifications being texts.
func (w *World) plugAndUpdateSaying(ctx context.Context, texts updateTexts, during func(context.Context) error, answers ...string) (UpdateResult, error) {
	st := w.Sticks[StickBackup]
	var res UpdateResult
	seq, err := w.PlugAnswering(ctx, st, answers...)
	if err != nil {
		return res, err
	}
	found, err := w.WaitNote(ctx, seq, texts.updating, texts.updatingBody, 2*time.Minute)
	if err != nil {
		return res, w.explain(ctx, seq, err)
	}
	res.PlugToStart, res.First = time.Since(st.pluggedAt), found
	w.Say.Logf("%s later, a notification appears: %q, %q.", round(res.PlugToStart), found.Summary, found.Body)
	started := time.Now()
	if during != nil {
		if err := during(ctx); err != nil {
			return res, w.explain(ctx, seq, err)
		}
	}
	done, err := w.WaitNote(ctx, seq, texts.done, "", updateTimeout)
	if err != nil {
		return res, w.explain(ctx, seq, err)
	}
	res.Update, res.Done = time.Since(started), done
	w.Say.Logf("%s later: %q, %q", round(res.Update), done.Summary, done.Body)
	res.Notes, _ = w.Notes(ctx, seq)
	if err := w.checkEjected(ctx, st); err != nil {
		return res, err
	}
	w.Log.Logf("timing: plug-to-start %s, update %s", round(res.PlugToStart), round(res.Update))
	return res, w.Unplug(ctx, st)
}

// checkEjected checks that the stick was locked and powered off: udisks no longer shows it
// and no device-mapper mapping is left.
func (w *World) checkEjected(ctx context.Context, st *Stick) error {
	if _, err := w.WaitDrive(ctx, st, "absent", time.Minute); err != nil {
		return fmt.Errorf("the backup was not powered off: %w", err)
	}
	out, err := w.G.Root(ctx, "dmsetup", "ls", "--target", "crypt")
	if err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] != "TailsData_unlocked" && f[0] != "No" {
			return fmt.Errorf("the backup's Persistent Storage is still unlocked: %s", out)
		}
	}
	return nil
}

// explain adds what the user saw and the agent's log to an error.
func (w *World) explain(ctx context.Context, seq int, err error) error {
	var b strings.Builder
	notes, _ := w.Notes(ctx, seq)
	for _, n := range notes {
		fmt.Fprintf(&b, "\n  notification %d: %q %q", n.ID, n.Summary, n.Body)
	}
	log := w.AgentLog(ctx)
	if len(log) > 6000 {
		log = log[len(log)-6000:]
	}
	return fmt.Errorf("%w; notifications:%s\nagent log (end):\n%s", err, b.String(), log)
}

// ChangeData changes the Persistent Storage of the running Tails like a week of use; big adds
// a new file of that many bytes.
func (w *World) ChangeData(ctx context.Context, seed int, big int) error {
	_, err := w.G.Root(ctx, guestTool, "change", "--seed", strconv.Itoa(seed), "--big", strconv.Itoa(big), persistenceMount)
	return err
}

// CheckBackup checks the backup against this Tails' Persistent Storage with tools
// independent of the product (rsync with checksums, through a read-only unlock by cryptsetup)
// and with 'tails-backup verify'. The marker, the tails-backup folder (this Tails' own
// pairings, which updates leave alone) and the tails-backup-cache folder (the helper's xattr
// cache, which is the backup's own) are not compared. The agent is stopped meanwhile (it would update the plugged
// backup), and the stick ends unplugged.
func (w *World) CheckBackup(ctx context.Context) error {
	return w.CheckStick(ctx, w.Sticks[StickBackup], "")
}

// CheckStick checks the backup Tails on st: its Persistent Storage as CheckBackup says, its
// system partition against the running one (rsync with checksums; syslinux/ldlinux.sys,
// luks-header-backup and storage/ are each stick's own, and the running stick's never reach
// the backup), and, if version is not "", the Tails version in its marker.
func (w *World) CheckStick(ctx context.Context, st *Stick, version string) error {
	start := time.Now()
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	ds, err := w.PlugAndWait(ctx, st)
	if err != nil {
		return err
	}
	if err := w.SetPinentry(ctx, st.Passphrase); err != nil {
		return err
	}
	part := ds.Device + "2"
	script := `set -e
cryptsetup open --readonly --key-file - ` + part + ` e2e-check
mkdir -p /run/e2e/check
mount -o ro,acl /dev/mapper/e2e-check /run/e2e/check
trap 'umount /run/e2e/check; cryptsetup close e2e-check' EXIT
rsync -aHAXS --numeric-ids -n -i --checksum --delete --exclude=/.tails-backup.json --exclude=/tails-backup/ --exclude=/tails-backup-keys/ --exclude=/tails-backup-cache/ ` + persistenceMount + `/ /run/e2e/check/
mkdir -p /run/e2e/checksys
mount -t vfat -o ro ` + ds.Device + `1 /run/e2e/checksys
trap 'umount /run/e2e/check /run/e2e/checksys; cryptsetup close e2e-check' EXIT
rsync -rc -n -i --delete --exclude=/syslinux/ldlinux.sys --exclude=/luks-header-backup --exclude=/storage/ ` + mediumMount + `/ /run/e2e/checksys/ | sed 's/^/system: /'
# The files of one stick alone (Tails 7) never come from the running stick.
for f in luks-header-backup storage; do
  if [ -e ` + mediumMount + `/$f ] && [ -e /run/e2e/checksys/$f ] && diff -rq ` + mediumMount + `/$f /run/e2e/checksys/$f >/dev/null; then
    echo "system: $f is the running stick's own"
  fi
done
echo "--- marker"
cat /run/e2e/check/.tails-backup.json
`
	// The independent check first: on Tails 7, a read-write mount at /media/amnesia/TailsData
	// makes Tails' service give amnesia r-x on the backup's root ACL (tails.MountedRootACL),
	// which rsync would then see; verify itself accepts it.
	t := time.Now()
	rout, rerr := w.G.Run(ctx, Cmd{Argv: []string{"sh", "-c", script}, Stdin: st.Passphrase})
	w.Log.Logf("timing: rsync --checksum check %s", round(time.Since(t)))
	t = time.Now()
	vout, verr := w.Terminal(ctx, "tails-backup", "verify", "--checksum", ds.Device)
	w.Log.Logf("tails-backup verify --checksum %s (%s):\n%s", ds.Device, round(time.Since(t)), vout)
	if _, err := w.WaitDrive(ctx, st, "locked", time.Minute); err != nil {
		return err
	}
	if err := w.Unplug(ctx, st); err != nil {
		return err
	}
	if err := w.StartAgent(ctx); err != nil {
		return err
	}
	if rerr != nil {
		return fmt.Errorf("independent check: %w", rerr)
	}
	diff, marker, _ := strings.Cut(rout, "--- marker\n")
	var m struct {
		State        string `json:"state"`
		Source       string `json:"source"`
		TailsVersion string `json:"tails_version"`
	}
	if err := json.Unmarshal([]byte(marker), &m); err != nil {
		return fmt.Errorf("the backup's marker is not readable: %w: %q", err, marker)
	}
	w.Log.Logf("check: marker state %q, Tails version %q; checked in %s", m.State, m.TailsVersion, round(time.Since(start)))
	var problems []string
	if strings.TrimSpace(diff) != "" {
		problems = append(problems, "rsync finds differences (system: lines are the system partition's):\n"+diff)
	}
	if verr != nil {
		problems = append(problems, fmt.Sprintf("tails-backup verify says the backup is not identical and valid (%v):\n%s", verr, vout))
	}
	if version != "" && m.TailsVersion != version {
		problems = append(problems, fmt.Sprintf("the marker says Tails %q, not %q", m.TailsVersion, version))
	}
	if m.State != "complete" {
		problems = append(problems, fmt.Sprintf("the marker says %q, not complete", m.State))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	w.Say.Logf("Checked: the backup's Persistent Storage and Tails system are identical to yours (rsync with checksums finds no difference, 'tails-backup verify' agrees).")
	return nil
}

// ScenarioUpdate (2): data changes; plugging the paired backup updates it, automatically.
func (w *World) ScenarioUpdate(ctx context.Context) error {
	w.Say.Logf("A week of use: new mail, new photos, a deleted photo, changed settings, 20 MB of new files.")
	if err := w.ChangeData(ctx, 1, 20<<20); err != nil {
		return err
	}
	w.Say.Logf("You plug in your backup Tails.")
	res, err := w.plugAndUpdate(ctx, w.sleepInhibited, w.Sticks[StickBackup].Passphrase)
	if err != nil {
		return err
	}
	if line, err := w.inhibitor(ctx); err != nil || line != "" {
		return fmt.Errorf("after the update, logind still lists the sleep inhibitor of Tails Backup: %q (%v)", line, err)
	}
	w.Log.Logf("logind lists no inhibitor of Tails Backup after the update")
	if !regexp.MustCompile(`^\d+ files? changed, ([0-9.]+ [kMGT]B|\d+ bytes?) copied\.$`).MatchString(res.Done.Body) {
		return fmt.Errorf("unexpected text of the done notification: %q", res.Done.Body)
	}
	w.Log.Logf("scenario 2: plug-to-start %s, update %s", round(res.PlugToStart), round(res.Update))
	return w.CheckBackup(ctx)
}

// inhibitor returns the line of `systemd-inhibit --list` (logind's ListInhibitors) for the
// inhibitor of Tails Backup, "" when there is none.
func (w *World) inhibitor(ctx context.Context) (string, error) {
	out, err := w.G.Root(ctx, "systemd-inhibit", "--list", "--no-legend", "--no-pager")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "Tails Backup ") {
			return strings.Join(strings.Fields(l), " "), nil
		}
	}
	return "", nil
}

// sleepInhibited checks, while an update runs, that the agent holds a logind inhibitor that
// blocks sleep and shutdown, as amnesia, with its reason. The agent takes it once the
// backup is unlocked and the applications quiesced, after the first notification, which asks
// for the passphrase: logind sends no signal for a new inhibitor, so short polls. The deadline
// covers the unlock (its argon2id takes 14 s in the emulated guest on a loaded machine, where
// 20 s in all was once too short), the mount and the quiesce; the inhibitor stays for the
// whole update, far longer than a poll.
func (w *World) sleepInhibited(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := w.G.WaitUntil(wctx, 200*time.Millisecond, Cmd{Argv: []string{"sh", "-c",
		"systemd-inhibit --list --no-legend --no-pager | grep -q '^ *Tails Backup '"}}); err != nil {
		return fmt.Errorf("during the update, logind lists no inhibitor of Tails Backup (systemd-inhibit --list): %w", err)
	}
	line, err := w.inhibitor(ctx)
	if err != nil || line == "" {
		return fmt.Errorf("the inhibitor of Tails Backup was gone at once (%v)", err)
	}
	// WHO ("Tails Backup") UID USER PID COMM WHAT WHY MODE; systemd lists WHAT in its own
	// order ("sleep:shutdown" in 252, "shutdown:sleep" in 257).
	f := strings.Fields(strings.TrimPrefix(line, "Tails Backup "))
	var what []string
	if len(f) > 4 {
		what = strings.Split(f[4], ":")
		slices.Sort(what)
	}
	if len(f) < 8 || f[0] != "1000" || f[1] != "amnesia" || !slices.Equal(what, []string{"shutdown", "sleep"}) ||
		strings.Join(f[5:len(f)-1], " ") != "Updating your backup Tails" || f[len(f)-1] != "block" {
		return fmt.Errorf("the inhibitor of Tails Backup is %q, not amnesia's blocking sleep and shutdown with the reason \"Updating your backup Tails\"", line)
	}
	w.Log.Logf("during the update, logind lists: %s", line)
	if w.Leg.Tails < 7 {
		return nil
	}
	// The backup is mounted at /media/amnesia/TailsData now, and Tails 7's service has given
	// amnesia r-x on its root (the update gives it the Persistent Storage root's ACL at its end;
	// the check after it finds them identical).
	acl, err := w.G.Root(ctx, "sh", "-c", "getfacl -cpn /media/amnesia/TailsData | grep '^user:1000:'")
	if err != nil || strings.TrimSpace(acl) != "user:1000:r-x" {
		return fmt.Errorf("during the update, the backup's root ACL at /media/amnesia/TailsData has %q (%v), not Tails 7's user:1000:r-x: the simulated Tails 7 did not act", acl, err)
	}
	w.Log.Logf("during the update, the backup's root at /media/amnesia/TailsData has Tails 7's %s", strings.TrimSpace(acl))
	return nil
}

// ScenarioPull (3): the stick is pulled out in the middle of an update, then plugged again.
func (w *World) ScenarioPull(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	w.Say.Logf("You copy a 200 MB video into your Persistent Folder, plug in your backup, and pull it out in the middle of the update.")
	if err := w.ChangeData(ctx, 2, 200<<20); err != nil {
		return err
	}
	seq, err := w.PlugAnswering(ctx, st, st.Passphrase)
	if err != nil {
		return err
	}
	// Wait until the copy is under way: a progress notification below 95%.
	var progress proto.Notification
	pct := regexp.MustCompile(`^(\d+)% done`)
	for progress.ID == 0 {
		n, err := w.WaitNote(ctx, seq, noteUpdating, "% done", 5*time.Minute)
		if err != nil {
			return w.explain(ctx, seq, err)
		}
		seq = n.Seq
		if m := pct.FindStringSubmatch(n.Body); m != nil {
			if p, _ := strconv.Atoi(m[1]); p >= 1 && p < 95 {
				progress = n
			} else if p >= 95 {
				return fmt.Errorf("the update went past 95%% before the stick could be pulled: %q", n.Body)
			}
		}
	}
	w.Say.Logf("The notification says %q: you pull the stick out.", progress.Body)
	if err := w.Unplug(ctx, st); err != nil {
		return err
	}
	n, err := w.WaitNote(ctx, progress.Seq, noteUnplugged, "Plug it in again to finish the update.", 2*time.Minute)
	if err != nil {
		return w.explain(ctx, progress.Seq, err)
	}
	w.Say.Logf("Tails Backup says: %q, %q", n.Summary, n.Body)
	w.Say.Logf("You plug it in again.")
	res, err := w.PlugAndUpdate(ctx, st.Passphrase)
	if err != nil {
		return err
	}
	w.Log.Logf("scenario 3: plug-to-start %s, finishing update %s", round(res.PlugToStart), round(res.Update))
	return w.CheckBackup(ctx)
}

// ScenarioWrongPassphrase (4): a wrong passphrase, then the right one.
func (w *World) ScenarioWrongPassphrase(ctx context.Context) error {
	if err := w.ChangeData(ctx, 3, 0); err != nil {
		return err
	}
	w.Say.Logf("You plug in your backup and mistype its passphrase once.")
	res, err := w.PlugAndUpdate(ctx, "not the passphrase", w.Sticks[StickBackup].Passphrase)
	if err != nil {
		return err
	}
	log, shown, err := w.PinentryLog(ctx)
	if err != nil {
		return err
	}
	if shown != 2 {
		return fmt.Errorf("the passphrase was asked %d times, not twice:\n%s", shown, log)
	}
	if !strings.Contains(log, "1: SETERROR "+wrongPassText) {
		return fmt.Errorf("the second passphrase dialog did not say %q:\n%s", wrongPassText, log)
	}
	if strings.Contains(log, "0: SETERROR") {
		return fmt.Errorf("the first passphrase dialog showed an error:\n%s", log)
	}
	w.Say.Logf("The dialog came back saying %q; with the right passphrase the update ran (%s).", wrongPassText, round(res.Update))
	w.Log.Logf("scenario 4: plug-to-start %s, update %s", round(res.PlugToStart), round(res.Update))
	return nil
}

// ScenarioUnpaired (5): another Tails stick is never written to.
func (w *World) ScenarioUnpaired(ctx context.Context) error {
	st := w.Sticks[StickUnpaired]
	before, err := Sha256(st.File)
	if err != nil {
		return err
	}
	seq, err := w.LastSeq(ctx)
	if err != nil {
		return err
	}
	w.Say.Logf("You plug in another Tails stick, one you never paired.")
	if err := w.Plug(ctx, st); err != nil {
		return err
	}
	n, err := w.WaitNote(ctx, seq, noteNotYours, "it did not touch this one", time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	w.Say.Logf("%s later: %q, %q", round(time.Since(st.pluggedAt)), n.Summary, n.Body)
	if _, err := w.WaitDrive(ctx, st, "locked", time.Minute); err != nil {
		return err
	}
	if err := w.Unplug(ctx, st); err != nil {
		return err
	}
	if err := w.noUpdateSince(ctx, seq, "on the unpaired stick"); err != nil {
		return err
	}
	after, err := Sha256(st.File)
	if err != nil {
		return err
	}
	if after != before {
		return fmt.Errorf("the unpaired stick was written to: sha256 %s before, %s after", before, after)
	}
	w.Say.Logf("Its image is byte for byte what it was (sha256 %s…).", before[:16])
	return nil
}

// ScenarioThunderbird (6): Thunderbird is open; the user is asked to close it.
func (w *World) ScenarioThunderbird(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	if err := w.ChangeData(ctx, 4, 0); err != nil {
		return err
	}
	pid, err := w.G.Start(ctx, "amnesia", thunderbirdBin, "infinity")
	if err != nil {
		return err
	}
	w.Say.Logf("Thunderbird is open (process %d) when you plug in your backup.", pid)
	seq, err := w.PlugAnswering(ctx, st, st.Passphrase)
	if err != nil {
		return err
	}
	q, err := w.WaitNote(ctx, seq, "Close Thunderbird?", "Close it to back up its data, or skip that data this time", 3*time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	if got, want := strings.Join(q.Actions, "|"), "close-app|Close Thunderbird|skip-app|Skip its data|cancel|Cancel update|default|Open Tails Backup"; got != want {
		return fmt.Errorf("the question has the buttons %q, want %q", got, want)
	}
	w.Say.Logf("Tails Backup asks: %q, %q; you choose %q.", q.Summary, q.Body, "Close Thunderbird")
	if err := w.Click(ctx, q, "close-app"); err != nil {
		return err
	}
	done, err := w.WaitNote(ctx, q.Seq, noteDone, "", updateTimeout)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	if strings.Contains(done.Body, "skipped") {
		return fmt.Errorf("Thunderbird's data was skipped although it was closed: %q", done.Body)
	}
	if _, err := w.G.Root(ctx, "kill", "-0", strconv.Itoa(pid)); err == nil {
		return fmt.Errorf("the Thunderbird stand-in (process %d) is still running", pid)
	}
	w.Say.Logf("Thunderbird was asked to quit and did; then: %q, %q", done.Summary, done.Body)
	if err := w.checkEjected(ctx, st); err != nil {
		return err
	}
	return w.Unplug(ctx, st)
}

// ScenarioReminder (7): the reminder comes when the backup gets old; "Update now" then plugging
// the backup updates it. The guest's clock is set 8 days forward while the agent runs, as
// htpdate sets the clock of a Tails once Tor is connected: the agent notices the clock change
// (no restart, no other event) and reminds at once.
func (w *World) ScenarioReminder(ctx context.Context) error {
	seq, err := w.LastSeq(ctx)
	if err != nil {
		return err
	}
	if _, err := w.G.Root(ctx, "date", "-s", "+8 days"); err != nil {
		return err
	}
	w.Say.Logf("The clock of this Tails is set 8 days forward while Tails Backup runs, as Tails does once Tor is connected.")
	r, err := w.WaitNote(ctx, seq, "Your backup Tails is 8 days old", "Plug in your backup Tails to update it. The update runs in the background.", time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	// Three buttons, and "default": a click on the reminder itself opens the Backup app.
	if got := strings.Join(r.ActionKeys(), ","); got != "update-now,snooze,stop-reminding,default" {
		return fmt.Errorf("the reminder has actions %q", got)
	}
	w.Say.Logf("A reminder: %q, %q; you choose %q.", r.Summary, r.Body, "Update now")
	if err := w.Click(ctx, r, "update-now"); err != nil {
		return err
	}
	p, err := w.WaitNote(ctx, r.Seq, "Plug in your backup Tails", "The update starts as soon as it is plugged in.", time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	w.Say.Logf("%q", p.Summary)
	if err := w.ChangeData(ctx, 5, 0); err != nil {
		return err
	}
	res, err := w.PlugAndUpdate(ctx, w.Sticks[StickBackup].Passphrase)
	if err != nil {
		return err
	}
	w.Log.Logf("scenario 7: plug-to-start %s, update %s", round(res.PlugToStart), round(res.Update))
	return nil
}

// ScenarioBackupTails (8): Tails started from the backup stick knows it is a backup, warns,
// and can be made the main Tails. The guest is set up again as a Tails running from the backup
// stick (what boot-tails does at boot), and the session starts again.
func (w *World) ScenarioBackupTails(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	if err := w.shutdownTails(ctx); err != nil {
		return err
	}
	ds, err := w.PlugAndWait(ctx, st)
	if err != nil {
		return err
	}
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "boot-tails", ds.Device}, Stdin: st.Passphrase}); err != nil {
		return err
	}
	seq, err := w.LastSeq(ctx)
	if err != nil {
		return err
	}
	w.Say.Logf("You start Tails from your backup stick.")
	if err := w.StartAgent(ctx); err != nil {
		return err
	}
	n, err := w.WaitNote(ctx, seq, noteBackupTails, "Changes you make here are overwritten at the next update from your main Tails.", time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	w.Say.Logf("It warns: %q, %q", n.Summary, n.Body)
	if err := w.Click(ctx, n, "promote"); err != nil {
		return err
	}
	c, err := w.WaitNote(ctx, n.Seq, "Make this your main Tails?", "", time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	if err := w.Click(ctx, c, "promote-confirm"); err != nil {
		return err
	}
	p, err := w.WaitNote(ctx, c.Seq, "This is now your main Tails", "", time.Minute)
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	w.Say.Logf("You choose %q and confirm: %q", "Make this my main Tails", p.Summary)
	if _, err := w.G.Root(ctx, "test", "-e", persistenceMount+"/.tails-backup.json"); err == nil {
		return errors.New("the backup marker is still in the Persistent Storage of the promoted Tails")
	}
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// ScenarioCreate (1): 'tails-backup create' makes a backup Tails on a blank stick, which then
// is the backup of the scenarios after it.
func (w *World) ScenarioCreate(ctx context.Context) error {
	st, err := w.NewStick(StickBackup, "NEWBACKUP1", 8_000_000_000) // an "8 GB" stick
	if err != nil {
		return err
	}
	st.Passphrase = BackupPassphrase
	w.Say.Logf("You plug in a new, blank 8 GB USB stick and run 'tails-backup create' to make it your backup Tails.")
	ds, err := w.PlugAndWait(ctx, st)
	if err != nil {
		return err
	}
	seq, err := w.LastSeq(ctx)
	if err != nil {
		return err
	}
	// The new passphrase, typed twice.
	if err := w.SetPinentry(ctx, st.Passphrase, st.Passphrase); err != nil {
		return err
	}
	start := time.Now()
	out, err := w.Terminal(ctx, "tails-backup", "create", "--yes", ds.Device)
	took := time.Since(start)
	w.Log.Logf("tails-backup create --yes %s (%s):\n%s", ds.Device, round(took), out)
	if err != nil && strings.Contains(err.Error(), "Timed out waiting for object") {
		// udisks 2.9 waits a fixed 20 s for udev after it creates a partition or a LUKS
		// volume; the emulated guest on a loaded machine can take longer, and then udisks
		// fails the action. create then says to run it again, which a user would do.
		w.Log.Logf("udisks gave up its 20 s wait for udev (a loaded machine): running create again, as its message says")
		if err := w.SetPinentry(ctx, st.Passphrase, st.Passphrase); err != nil {
			return err
		}
		start = time.Now()
		out, err = w.Terminal(ctx, "tails-backup", "create", "--yes", ds.Device)
		took = time.Since(start)
		w.Log.Logf("tails-backup create --yes %s, again (%s):\n%s", ds.Device, round(took), out)
	}
	if err != nil {
		return w.explain(ctx, seq, err)
	}
	if !strings.Contains(out, "Your backup Tails is ready: you can unplug it.") {
		return fmt.Errorf("tails-backup create did not say the backup is ready: %q", out)
	}
	w.Say.Logf("After you typed a passphrase for it twice, %s later it says: %q", round(took), lastLine(out))
	w.Log.Logf("timing: create %s", round(took))
	if err := w.checkEjected(ctx, st); err != nil {
		return err
	}
	if err := w.Unplug(ctx, st); err != nil {
		return err
	}
	// A running agent must not have started an update of the new stick meanwhile.
	if err := w.noUpdateSince(ctx, seq, "while create was making the backup"); err != nil {
		return err
	}
	// create adds the key slot of updates without the passphrase (on by default).
	w.backupKeySlot = true
	return w.CheckStick(ctx, st, "")
}

// ScenarioSystemRefresh (9): the running Tails was upgraded; the next update of the backup
// also brings its Tails system to the new version.
func (w *World) ScenarioSystemRefresh(ctx context.Context) error {
	version := w.Leg.Next
	if w.Leg.Tails >= 7 {
		// The backup was started once and its Welcome Screen kept its own settings there.
		if _, err := w.onSystemPartition(ctx, w.Sticks[StickBackup], `mkdir -p "$SYS/storage" && printf 'language=de_DE\n' >"$SYS/storage/welcome-screen.conf"`); err != nil {
			return err
		}
	}
	w.Say.Logf("Tails upgrades itself to %s.", version)
	if _, err := w.G.Root(ctx, guestTool, "upgrade-medium", version); err != nil {
		return err
	}
	if err := w.ChangeData(ctx, 6, 0); err != nil {
		return err
	}
	w.Say.Logf("You plug in your backup Tails.")
	res, err := w.PlugAndUpdate(ctx, w.Sticks[StickBackup].Passphrase)
	if err != nil {
		return err
	}
	if want := "Its Tails system was updated to Tails " + version + "."; !strings.Contains(res.Done.Body, want) {
		return fmt.Errorf("the done notification does not say %q: %q", want, res.Done.Body)
	}
	sawSystem := false
	for _, n := range res.Notes {
		sawSystem = sawSystem || n.Summary == "Updating the Tails system on your backup"
	}
	if !sawSystem {
		return errors.New("no notification showed the progress of the system update")
	}
	w.Log.Logf("scenario 9: plug-to-start %s, update with the system %s", round(res.PlugToStart), round(res.Update))
	if err := w.CheckStick(ctx, w.Sticks[StickBackup], short(version)); err != nil {
		return err
	}
	if w.Leg.Tails >= 7 {
		out, err := w.onSystemPartition(ctx, w.Sticks[StickBackup], `cat "$SYS/storage/welcome-screen.conf"; ls -a "$SYS"`)
		if err != nil {
			return err
		}
		if !strings.HasPrefix(out, "language=de_DE\n") || strings.Contains(out, "luks-header-backup") {
			return fmt.Errorf("after the system refresh, the backup's own Welcome Screen settings were not kept, or the running stick's LUKS header backup reached it: %q", out)
		}
		w.Log.Logf("after the system refresh, the backup keeps its own storage/ and has no luks-header-backup")
	}
	return nil
}

// onSystemPartition runs script as root in the guest with the system partition of st mounted
// at $SYS (read-write, as udisks mounts it for amnesia), st plugged for the time being and the
// agent stopped meanwhile.
func (w *World) onSystemPartition(ctx context.Context, st *Stick, script string) (string, error) {
	return w.plugged(ctx, st, func(ds DriveState) (string, error) {
		return w.G.Root(ctx, "sh", "-c", `set -e
SYS=/run/e2e/sys
mkdir -p $SYS
mount -t vfat `+ds.Device+`1 $SYS
trap 'umount $SYS' EXIT
`+script)
	})
}

// noUpdateSince fails if the agent started an update after notification seq; when says of
// what, for the error.
func (w *World) noUpdateSince(ctx context.Context, seq int, when string) error {
	notes, err := w.Notes(ctx, seq)
	if err != nil {
		return err
	}
	for _, n := range notes {
		if n.Summary == noteUpdating {
			return fmt.Errorf("the agent started an update %s: %q", when, n.Body)
		}
	}
	return nil
}
