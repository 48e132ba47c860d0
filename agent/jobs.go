package agent

// The API's Pair, Verify, Restore and Create: each checks on the Run goroutine what it can
// refuse at once, then starts a flow job (flows.go).

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"tails-backup/clock"
	"tails-backup/dbusapi"
	"tails-backup/internal/secmem"
	"tails-backup/pairing"
	"tails-backup/session"
	"tails-backup/udisks"
)

// startChecked runs check then start on the Run goroutine, once no job runs; the job's ID.
func (api *API) startChecked(ctx context.Context, start func(ctx context.Context) (string, error)) (string, error) {
	var id string
	err := api.do(ctx, func(ctx context.Context, _ clock.Timer) error {
		if api.a.busy() {
			return &dbusapi.Error{Kind: dbusapi.Busy, Text: apiTextBusy}
		}
		var err error
		id, err = start(ctx)
		return err
	})
	return id, err
}

// pickTails finds the Tails stick a job is asked for: device names it ("" the only one among
// those keep keeps, nil keeping all).
func (a *Agent) pickTails(device string, keep func(session.Stick) bool) (session.Stick, error) {
	if a.snap == nil {
		return session.Stick{}, dbusapi.Errorf(dbusapi.NotFound, apiTextNoStick, device)
	}
	boot := a.deps.Disks.BootPaths()
	cands := session.Candidates(a.snap, boot)
	if keep != nil {
		cands = slices.DeleteFunc(cands, func(st session.Stick) bool { return !keep(st) })
	}
	st, err := session.PickStick(a.snap, boot, cands, device)
	var pe *session.PickError
	if !errors.As(err, &pe) {
		return st, err
	}
	switch pe.Reason {
	case session.PickNone, session.PickNoDevice:
		return st, dbusapi.Errorf(dbusapi.NotFound, apiTextNoStick, device)
	case session.PickSeveral:
		return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextWhichStick}
	case session.PickNotTails:
		return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextNotTails}
	case session.PickUnfit:
		if pe.Unfit == session.UnfitBoot {
			return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextBootStick}
		}
		return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: appText("this stick " + session.UnfitText(pe.Unfit))}
	}
	return st, dbusapi.Errorf(dbusapi.Refused, apiTextUnfit, pe.Why)
}

// Pair implements dbusapi.Backend: session.Pair, as 'tails-backup pair DEVICE' does.
func (api *API) Pair(ctx context.Context, device string) (string, error) {
	return api.startChecked(ctx, func(ctx context.Context) (string, error) {
		a := api.a
		switch {
		case a.isBackup:
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextIsBackup}
		case a.source == "":
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextNoPersistence}
		}
		resolve := func(ctx context.Context) (session.Stick, error) {
			st, err := a.pickTails(device, nil)
			if state := a.loadState(ctx); err == nil && state.IsPaired(st.UUID) {
				err = &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextAlreadyPaired}
			}
			return st, err
		}
		return a.startStickFlow(ctx, dbusapi.KindPair, device, apiStepPair, plugPair, resolve, func(ctx context.Context, ui *flowUI, st session.Stick) flowEnd {
			dev := session.Device(st.Stick)
			ui.confirm = pairQuestion()
			ui.closing = map[string]bool{session.PairedText: true}
			p := &session.Pair{
				Connect: a.connect, Boot: a.deps.Disks.BootPaths(), OwnRoot: a.deps.Disks.BootPaths().Persistence,
				Store: a.flowStore(), Helper: a.deps.Helper, Asker: a.deps.Asker, Now: a.deps.Clock.Now,
				Log: ui.log, UI: ui, Device: dev,
			}
			if err := p.Run(ctx); err != nil {
				return flowEnd{res: ui.failed(err)}
			}
			text := ui.closingText()
			if text == "" {
				text = appText("Paired. Your backup Tails is updated each time you plug it in; unplug it and plug it in again to make the first update.")
			}
			return flowEnd{res: dbusapi.Result{Result: dbusapi.ResultSuccess, Text: text, Backup: st.UUID}, handled: []string{st.UUID}}
		})
	})
}

// Verify implements dbusapi.Backend: session.Verify, as 'tails-backup verify DEVICE' does. The
// job succeeds when the backup is identical and valid; its differences and checks are in the
// details either way, once the comparison ran.
func (api *API) Verify(ctx context.Context, device string) (string, error) {
	return api.startChecked(ctx, func(ctx context.Context) (string, error) {
		a := api.a
		resolve := func(ctx context.Context) (session.Stick, error) {
			state := a.loadState(ctx)
			// Without a device, the only paired backup plugged in: another Tails stick plugged
			// in does not stop the job from waiting for it.
			var keep func(session.Stick) bool
			if device == "" {
				keep = func(st session.Stick) bool { return state.IsPaired(st.UUID) }
			}
			st, err := a.pickTails(device, keep)
			if err == nil && !state.IsPaired(st.UUID) {
				err = &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextNotYourBackup}
			}
			return st, err
		}
		return a.startStickFlow(ctx, dbusapi.KindVerify, device, apiStepVerify, plugVerify, resolve, func(ctx context.Context, ui *flowUI, st session.Stick) flowEnd {
			dev := session.Device(st.Stick)
			ui.setStep(apiStepVerify)
			v := &session.Verify{
				Connect: a.connect, Boot: a.deps.Disks.BootPaths(), Store: a.flowStore(), Helper: a.deps.Helper,
				Asker: a.deps.Asker, Log: ui.log, UI: ui, Device: dev,
			}
			rep, err := v.Run(ctx)
			if err != nil {
				return flowEnd{res: ui.failed(err), handled: []string{st.UUID}}
			}
			diffs, checks := ui.findings()
			res := dbusapi.Result{Result: dbusapi.ResultSuccess, Text: textVerifyOK, Differences: diffs, Checks: checks}
			if rep.ChangesNotListed > 0 {
				ui.Say(fmt.Sprintf(textVerifyNotListed, rep.ChangesNotListed))
			}
			if len(rep.Features) > 0 {
				ui.Say(fmt.Sprintf(textVerifyFeatures, strings.Join(rep.Features, ", ")))
			} else {
				ui.Say(textVerifyNoFeatures)
			}
			problems := rep.Problems
			for _, c := range checks {
				if !c.OK {
					problems = max(problems, 1)
				}
			}
			check := dbusapi.Check{Name: checkPersistence, OK: problems == 0, Text: textCheckAccepted}
			if problems > 0 {
				check.Text = textCheckRefused
			}
			res.Checks = append([]dbusapi.Check{check}, res.Checks...)
			n := max(rep.Created+rep.Updated+rep.MetadataOnly+rep.Deleted, int64(len(diffs))+rep.ChangesNotListed)
			if n > 0 || problems > 0 || rep.ErrorCount > 0 {
				unreadable := ""
				if rep.ErrorCount > 0 {
					unreadable = fmt.Sprintf(textVerifyUnreadable, session.CountText(rep.ErrorCount, "file", "files"))
				}
				res.Result = dbusapi.ResultFailed
				res.Text = fmt.Sprintf(textVerifyDiffers, session.CountText(n, "difference", "differences"),
					session.CountText(problems, "problem", "problems"), unreadable)
			}
			return flowEnd{res: res, handled: []string{st.UUID}}
		})
	})
}

// Restore implements dbusapi.Backend: session.Restore, as 'tails-backup restore DEVICE' does;
// it asks its confirmation (a stronger one for the backup of another Tails) and about the
// applications open as Questions.
func (api *API) Restore(ctx context.Context, device string) (string, error) {
	return api.startChecked(ctx, func(ctx context.Context) (string, error) {
		a := api.a
		switch {
		case a.isBackup:
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextRestoreIntoBackup}
		case a.source == "":
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextRestoreNoPersistence}
		}
		resolve := func(context.Context) (session.Stick, error) { return a.pickTails(device, nil) }
		return a.startStickFlow(ctx, dbusapi.KindRestore, device, apiStepRestore, plugRestore, resolve, func(ctx context.Context, ui *flowUI, st session.Stick) flowEnd {
			dev := session.Device(st.Stick)
			r := &session.Restore{
				Connect: a.connect, Boot: a.deps.Disks.BootPaths(), OwnRoot: a.deps.Disks.BootPaths().Persistence,
				Store: a.flowStore(), Helper: a.deps.Helper, Asker: a.deps.Asker, Quiescer: a.deps.Quiescer,
				Now: a.deps.Clock.Now, Log: ui.log, UI: &restoreUI{flowUI: ui}, Device: dev, PlugWait: session.RestorePlugWait,
			}
			done, err := r.Run(ctx)
			if err != nil {
				return flowEnd{res: ui.failed(err), handled: []string{st.UUID}}
			}
			rep := done.Report
			res := dbusapi.Result{Result: dbusapi.ResultSuccess, Text: fmt.Sprintf(textRestoreDone,
				session.CountText(rep.Created, "file or folder", "files and folders"), rep.Updated, rep.Deleted, session.SizeText(rep.BytesCopied))}
			if len(done.Skipped) > 0 {
				ui.Say(fmt.Sprintf(textRestoreLeft, strings.Join(done.Skipped, ", ")))
			}
			if err := session.RestoreResult(rep); err != nil {
				res.Result, res.Text = dbusapi.ResultFailed, appText(strings.ReplaceAll(err.Error(), " (listed above)", "")+"; restart Tails to use what was restored")
			}
			_, res.Checks = ui.findings()
			return flowEnd{res: res, handled: []string{st.UUID}}
		})
	})
}

// restoreUI is the flow UI of a restore: the description of the backup, said before the
// confirmation, is the body of its question, and the copy gets its step.
type restoreUI struct {
	*flowUI
	described []string // what was said since the backup was opened
}

// Say implements session.RestoreUI.
func (u *restoreUI) Say(s string) {
	switch {
	case strings.HasPrefix(s, restoreOpeningPrefix):
		u.described = []string{}
	case strings.HasPrefix(s, restoreCopyingPrefix):
		u.setStep(apiStepRestoreCopy)
	case u.described != nil:
		u.described = append(u.described, appText(s))
		return
	}
	u.flowUI.Say(s)
}

// ConfirmRestore implements session.RestoreUI.
func (u *restoreUI) ConfirmRestore(ctx context.Context, other bool) bool {
	q := restoreQuestion(other)
	if len(u.described) > 0 {
		q.Body = strings.Join(u.described, " ")
	}
	u.described = nil
	return u.ask(ctx, q) == q.Destructive
}

// Create implements dbusapi.Backend: session.Creation, as 'tails-backup create DEVICE' does once
// the person confirmed; confirm must be the stick's token of ListSticks("create"), as the
// stick is now.
func (api *API) Create(ctx context.Context, device, confirm string) (string, error) {
	return api.startChecked(ctx, func(ctx context.Context) (string, error) {
		a := api.a
		switch {
		case a.isBackup:
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: textCreateIsBackup}
		case a.source == "":
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextNoPersistence}
		case confirm == "":
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextNoConfirm}
		case a.snap == nil:
			return "", dbusapi.Errorf(dbusapi.NotFound, apiTextNoStick, device)
		}
		boot := a.deps.Disks.BootPaths()
		used := persistenceUsed(boot.Persistence)
		store := a.deps.Store
		before, setAside, err := session.LoadState(ctx, store)
		if err != nil {
			return "", &dbusapi.Error{Kind: dbusapi.Failed, Text: appText(err.Error())}
		}
		target, err := findCreateTarget(a.snap, session.CreateTargets(a.snap, boot, used, &before), device)
		if err != nil {
			return "", err
		}
		if !sameToken(createToken(a.snap, target), confirm) {
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: apiTextChanged}
		}
		dev := session.Device(target.Stick)
		return a.startFlow(ctx, dbusapi.KindCreate, dev, "", apiStepCreateIn, func(ctx context.Context, ui *flowUI) flowEnd {
			if setAside != nil {
				ui.Warn(session.StateErrorText(setAside))
			}
			return a.runCreate(ctx, ui, target, used, store.Path(), before, setAside != nil)
		}), nil
	})
}

// findCreateTarget is the target on device, which must be usable.
func findCreateTarget(snap *udisks.Snapshot, targets []session.CreateTarget, device string) (session.CreateTarget, error) {
	o := snap.ByDevice(session.DevicePath(device))
	if device == "" || o == nil {
		return session.CreateTarget{}, dbusapi.Errorf(dbusapi.NotFound, apiTextNoStick, device)
	}
	drive := snap.DriveOf(o.Path)
	for _, t := range targets {
		if drive == nil || t.Drive.Path != drive.Path {
			continue
		}
		if t.Reason != "" {
			return t, dbusapi.Errorf(dbusapi.Refused, apiTextUnfit, t.Reason)
		}
		return t, nil
	}
	return session.CreateTarget{}, dbusapi.Errorf(dbusapi.NotFound, apiTextNoStick, device)
}

// runCreate is the job of Create: the passphrase through pinentry, the creation, the eject,
// then the pairing, as the command does them.
func (a *Agent) runCreate(ctx context.Context, ui *flowUI, target session.CreateTarget, used uint64, readPath string, before pairing.State, beforeDamaged bool) flowEnd {
	name := session.Describe(target.Stick)
	ui.setStep(apiStepCreatePass)
	pass, err := session.AskNewPassphrase(ctx, a.deps.Asker, name)
	if err != nil {
		if errors.Is(err, session.ErrPassphraseNotGiven) {
			ui.decline()
		}
		return flowEnd{res: ui.failed(err)}
	}
	defer secmem.Wipe(pass)
	l, _ := session.PlanLayout(target.Facts.Size)
	c := &session.Creation{
		Disks: a.deps.Disks, Boot: a.deps.Disks.BootPaths(), Log: ui.log, Name: name, Helper: a.deps.Helper,
		Drive: target.Drive.Path, Layout: l, Used: used, Progress: ui,
	}
	if err := c.Run(ctx, pass); err != nil {
		return flowEnd{res: ui.failed(err)}
	}
	// Ejected before the pairing is saved, as the command does.
	ejectErr := c.Eject(ctx)
	now := a.deps.Clock.Now()
	store, err := a.flowStore()()
	if err == nil {
		err = session.SavePairing(ctx, store, readPath, before, beforeDamaged, func(se *pairing.StateError) { ui.Warn(session.StateErrorText(se)) }, func(s *pairing.State) error {
			return c.Pair(s, target, now)
		})
	}
	if err != nil {
		return flowEnd{res: dbusapi.Result{Result: dbusapi.ResultFailed, Text: fmt.Sprintf(textCreateNotPaired, name, session.Reason(err))}}
	}
	res := dbusapi.Result{Result: dbusapi.ResultSuccess, Text: textCreateDone, Backup: c.UUID}
	if ejectErr != nil {
		res.Text = fmt.Sprintf(textCreateNotEjected, name, session.Reason(ejectErr))
	}
	return flowEnd{res: res, handled: []string{c.UUID}}
}

// createToken names a stick as it is now, for Create's confirm: the drive (its object, serial
// and size) and what is on it (its partition table, each partition and what it holds). It
// changes when the stick is replaced, repartitioned, reformatted, unlocked or paired.
func createToken(snap *udisks.Snapshot, t session.CreateTarget) string {
	h := sha256.New()
	field := func(v any) { fmt.Fprintf(h, "%v\x00", v) }
	d := t.Drive
	field(d.Path)
	if d.Drive != nil {
		field(d.Drive.Serial)
		field(d.Drive.Size)
	}
	field(t.PairedUUID)
	if disk := t.Stick.Disk; disk != nil {
		blocks := []*udisks.Object{disk}
		if disk.PartitionTable != nil {
			field(disk.PartitionTable.Type)
		}
		blocks = append(blocks, snap.Partitions(disk.Path)...)
		for _, o := range blocks {
			field(o.Path)
			if o.Block != nil {
				field(o.Block.Device)
				field(o.Block.Size)
				field(o.Block.IdType)
				field(o.Block.IdUUID)
				field(o.Block.IdLabel)
			}
			if p := o.Partition; p != nil {
				field(p.UUID)
				field(p.Offset)
				field(p.Size)
				field(p.Type)
				field(p.Name)
			}
			if ct := snap.Cleartext(o.Path); ct != nil {
				field(ct.Path)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// sameToken compares a confirm token in constant time.
func sameToken(want, got string) bool {
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// erasedLines is what ListSticks("create") says erasing the target destroys.
func erasedLines(snap *udisks.Snapshot, t session.CreateTarget) []string {
	var out []string
	switch {
	case t.PairedUUID != "":
		out = append(out, session.ReplaceBackupText)
	case t.What != "":
		out = append(out, sentence(t.What))
	}
	for _, l := range session.ErasedLines(snap, t) {
		out = append(out, sentence(l))
	}
	return out
}
