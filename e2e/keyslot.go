package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// noteUnlockingKeyBody is the first notification of an update of a backup with a key slot.
const noteUnlockingKeyBody = "Unlocking your backup Tails with the key kept in this Tails: no passphrase is needed."

// keyLostText starts the passphrase dialog of an update whose kept key no longer opens the backup.
const keyLostText = "Your backup Tails needs its passphrase this time: the key kept in this Tails no longer opens it."

var luksSlotLine = regexp.MustCompile(`(?m)^\s+(\d+): luks2`)

// keySlots returns the LUKS2 key slots of the backup's Persistent Storage (cryptsetup luksDump).
func (w *World) keySlots(ctx context.Context, luksUUID string) ([]int, error) {
	out, err := w.G.Root(ctx, "cryptsetup", "luksDump", "UUID="+luksUUID)
	if err != nil {
		return nil, err
	}
	var slots []int
	for _, m := range luksSlotLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		slots = append(slots, n)
	}
	return slots, nil
}

// testPassphrase checks that the passphrase still opens the backup (cryptsetup --test-passphrase).
func (w *World) testPassphrase(ctx context.Context, luksUUID, pass string) error {
	_, err := w.G.Run(ctx, Cmd{Argv: []string{"cryptsetup", "open", "--test-passphrase", "--key-file=-", "UUID=" + luksUUID}, Stdin: pass})
	return err
}

// plugLocked plugs st and waits until udisks shows its Persistent Storage, locked (the state
// "present" comes as soon as the drive does, before its partitions and their LUKS UUID).
func (w *World) plugLocked(ctx context.Context, st *Stick) (DriveState, error) {
	if err := w.Plug(ctx, st); err != nil {
		return DriveState{}, err
	}
	ds, err := w.WaitDrive(ctx, st, "locked", time.Minute)
	// blkid's probe of the LUKS header may come after the partition: short polls.
	for i := 0; err == nil && ds.LUKSUUID == "" && i < 60; i++ {
		time.Sleep(500 * time.Millisecond)
		ds, err = w.WaitDrive(ctx, st, "any", time.Minute)
	}
	if err == nil && ds.LUKSUUID == "" {
		err = fmt.Errorf("udisks shows no LUKS UUID on the locked %s: %+v", st.Serial, ds)
	}
	return ds, err
}

// withBackupPlugged plugs the backup with the agent stopped (so that it does not update it),
// runs fn with its udisks view, unplugs it and starts the agent again.
func (w *World) withBackupPlugged(ctx context.Context, fn func(ds DriveState) error) error {
	st := w.Sticks[StickBackup]
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	ds, err := w.plugLocked(ctx, st)
	if err == nil {
		err = fn(ds)
	}
	if uerr := w.Unplug(ctx, st); err == nil {
		err = uerr
	}
	if serr := w.StartAgent(ctx); err == nil {
		err = serr
	}
	return err
}

// ScenarioPassphraseFree (15): the backup that create made has a key slot: plugged in, it is
// updated and ejected with no passphrase dialog at all, and its passphrase still opens it;
// 'tails-backup passphrase-free off' removes the slot and the next plug asks the passphrase;
// turned on again ('passphrase-free on'), then Tails started from the backup and promoted,
// which removes the slot (promoteBackup), the next plug falls back to the passphrase and says
// why, once. It ends with the slot gone, as the scenarios after it expect.
func (w *World) ScenarioPassphraseFree(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	// A week of changes, without the change tool: each of its seeds removes a photo that
	// another scenario's seed would remove again.
	if _, err := w.G.Root(ctx, "sh", "-c", "install -o 1000 -g 1000 -m 0600 /dev/null "+persistenceMount+"/Persistent/passphrase-free.txt && date >> "+persistenceMount+"/Persistent/passphrase-free.txt"); err != nil {
		return err
	}
	w.Say.Logf("A week later you plug in your backup Tails, made by 'tails-backup create', and walk away.")
	var luksUUID string
	var slots []int
	during := func(ctx context.Context) error {
		ds, err := w.WaitDrive(ctx, st, "any", time.Minute)
		if err != nil {
			return err
		}
		luksUUID = ds.LUKSUUID
		if slots, err = w.keySlots(ctx, luksUUID); err != nil {
			return err
		}
		return nil
	}
	res, err := w.plugAndUpdateSaying(ctx, updateTexts{noteUpdating, noteUnlockingKeyBody, noteDone}, during)
	if err != nil {
		return err
	}
	log, shown, err := w.PinentryLog(ctx)
	if err != nil {
		return err
	}
	if shown != 0 {
		return fmt.Errorf("the passphrase was asked %d times, want never:\n%s", shown, log)
	}
	if len(slots) != 2 {
		return fmt.Errorf("the backup has the key slots %v, want 2 (its passphrase and the kept key)", slots)
	}
	w.Say.Logf("The update ran with no passphrase dialog at all (%s) and ejected the stick: %q.", round(res.Update), res.Done.Body)

	// The passphrase still opens it; off removes the slot.
	err = w.withBackupPlugged(ctx, func(ds DriveState) error {
		if err := w.testPassphrase(ctx, ds.LUKSUUID, st.Passphrase); err != nil {
			return fmt.Errorf("the passphrase no longer opens the backup: %w", err)
		}
		out, err := w.Terminal(ctx, "tails-backup", "passphrase-free", "off", ds.Device)
		w.Log.Logf("tails-backup passphrase-free off %s:\n%s", ds.Device, out)
		if err != nil {
			return err
		}
		if slots, err = w.keySlots(ctx, ds.LUKSUUID); err != nil {
			return err
		}
		if len(slots) != 1 {
			return fmt.Errorf("after passphrase-free off the backup has the key slots %v, want 1", slots)
		}
		return w.testPassphrase(ctx, ds.LUKSUUID, st.Passphrase)
	})
	if err != nil {
		return err
	}
	w.Say.Logf("'tails-backup passphrase-free off' removed the key slot; cryptsetup luksDump shows one slot.")
	if _, err := w.PlugAndUpdate(ctx, st.Passphrase); err != nil {
		return err
	}
	if log, shown, err = w.PinentryLog(ctx); err != nil || shown != 1 {
		return fmt.Errorf("after off, the passphrase was asked %d times, want once (%v):\n%s", shown, err, log)
	}
	w.Say.Logf("The next plug asked the passphrase, once.")

	// On again (the passphrase once), then Tails started from the backup and made the main
	// Tails: promote removes the slot whose key this (the lost) main Tails keeps.
	err = w.withBackupPlugged(ctx, func(ds DriveState) error {
		if err := w.SetPinentry(ctx, st.Passphrase); err != nil {
			return err
		}
		out, err := w.Terminal(ctx, "tails-backup", "passphrase-free", "on", ds.Device)
		w.Log.Logf("tails-backup passphrase-free on %s:\n%s", ds.Device, out)
		if err != nil {
			return err
		}
		if slots, err = w.keySlots(ctx, ds.LUKSUUID); err != nil || len(slots) != 2 {
			return fmt.Errorf("after passphrase-free on the backup has the key slots %v (%v), want 2", slots, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.Say.Logf("'tails-backup passphrase-free on' added the key slot again (the passphrase typed once).")
	if err := w.promoteBackup(ctx); err != nil {
		return err
	}
	w.Say.Logf("Back on the main Tails, whose key the backup no longer accepts: the next plug falls back to the passphrase.")
	if _, err := w.plugAndUpdateSaying(ctx, updateTexts{noteUpdating, noteUnlockingKeyBody, noteDone}, nil, st.Passphrase); err != nil {
		return err
	}
	log, shown, err = w.PinentryLog(ctx)
	if err != nil {
		return err
	}
	if shown != 1 || !strings.Contains(log, keyLostText) {
		return fmt.Errorf("with its slot removed, the passphrase was asked %d times (want once, saying %q):\n%s", shown, keyLostText, log)
	}
	w.Say.Logf("The dialog said %q, and the update ran.", keyLostText)
	// Said once: the next plug asks the passphrase plainly.
	if _, err := w.PlugAndUpdate(ctx, st.Passphrase); err != nil {
		return err
	}
	if log, shown, err = w.PinentryLog(ctx); err != nil || shown != 1 || strings.Contains(log, keyLostText) {
		return fmt.Errorf("the plug after: asked %d times (%v), want once without %q:\n%s", shown, err, keyLostText, log)
	}
	w.backupKeySlot = false
	return nil
}

// KeySlotOff turns off the backup's updates without the passphrase ('tails-backup
// passphrase-free off'), for the scenarios that type its passphrase, unless it is off already
// (scenario 15 leaves it off).
func (w *World) KeySlotOff(ctx context.Context) error {
	if !w.backupKeySlot {
		return nil
	}
	err := w.withBackupPlugged(ctx, func(ds DriveState) error {
		out, err := w.Terminal(ctx, "tails-backup", "passphrase-free", "off", ds.Device)
		w.Log.Logf("tails-backup passphrase-free off %s:\n%s", ds.Device, out)
		if err != nil {
			return err
		}
		if slots, err := w.keySlots(ctx, ds.LUKSUUID); err != nil || len(slots) != 1 {
			return fmt.Errorf("after passphrase-free off the backup has the key slots %v (%v), want 1", slots, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.backupKeySlot = false
	w.Say.Logf("For the scenarios that type the backup's passphrase: 'tails-backup passphrase-free off'.")
	return nil
}

// promoteBackup starts Tails from the backup (the main Tails shut down, as scenario 8 does)
// and makes it the main Tails with 'tails-backup promote --yes': the key slot whose key the
// main Tails keeps must be gone, the passphrase must still open it. Then, for the rest of the
// scenario and those after it, the backup gets its marker back (a backup again, its slot
// gone: a stick whose slot was removed) and the guest runs from the main Tails again.
func (w *World) promoteBackup(ctx context.Context) error {
	st := w.Sticks[StickBackup]
	if err := w.StopAgent(ctx); err != nil {
		return err
	}
	if err := w.shutdownTails(ctx); err != nil {
		return err
	}
	ds, err := w.plugLocked(ctx, st)
	if err != nil {
		return err
	}
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{guestTool, "boot-tails", ds.Device}, Stdin: st.Passphrase}); err != nil {
		return err
	}
	w.Say.Logf("You start Tails from your backup stick and make it your main Tails ('tails-backup promote').")
	markerPath := persistenceMount + "/.tails-backup.json"
	marker, err := w.G.Root(ctx, "cat", markerPath)
	if err != nil {
		return err
	}
	before, err := w.keySlots(ctx, ds.LUKSUUID)
	if err != nil {
		return err
	}
	out, err := w.Terminal(ctx, "tails-backup", "promote", "--yes")
	w.Log.Logf("tails-backup promote --yes:\n%s", out)
	if err != nil {
		return err
	}
	after, err := w.keySlots(ctx, ds.LUKSUUID)
	if err != nil {
		return err
	}
	if len(before) != 2 || len(after) != 1 {
		return fmt.Errorf("promote: the key slots were %v, are %v; want 2, then 1", before, after)
	}
	if err := w.testPassphrase(ctx, ds.LUKSUUID, st.Passphrase); err != nil {
		return fmt.Errorf("after promote the passphrase no longer opens the stick: %w", err)
	}
	w.Say.Logf("promote removed the key slot of the main Tails' key: cryptsetup luksDump shows the slots %v, then %v; the passphrase still opens it.", before, after)

	// The fixture: a backup again, and the main Tails running.
	if _, err := w.G.Run(ctx, Cmd{Argv: []string{"sh", "-c", "cat > " + markerPath + " && chown root:root " + markerPath + " && chmod 0644 " + markerPath}, Stdin: marker}); err != nil {
		return err
	}
	if err := w.shutdownTails(ctx); err != nil {
		return err
	}
	if err := w.Unplug(ctx, st); err != nil {
		return err
	}
	return w.bootTails(ctx, MainPassphrase)
}
