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
	"tails-backup/l10n"
	"tails-backup/pairing"
	"tails-backup/session"
	"tails-backup/udisks"
)

// startChecked runs check then start on the Run goroutine, once no job runs; the job's ID.
func (api *API) startChecked(ctx context.Context, start func(ctx context.Context) (string, error)) (string, error) {
	var id string
	err := api.do(ctx, func(ctx context.Context, _ clock.Timer) error {
		if api.a.busy() {
			return &dbusapi.Error{Kind: dbusapi.Busy, Text: api.a.loc.Tr(apiTextBusy)}
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
	loc := a.loc
	if a.snap == nil {
		return session.Stick{}, &dbusapi.Error{Kind: dbusapi.NotFound, Text: loc.Tr(apiTextNoStick, device)}
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
		return st, &dbusapi.Error{Kind: dbusapi.NotFound, Text: loc.Tr(apiTextNoStick, device)}
	case session.PickSeveral:
		return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(apiTextWhichStick)}
	case session.PickNotTails:
		return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(apiTextNotTails)}
	case session.PickUnfit:
		if pe.Unfit == session.UnfitBoot {
			return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(apiTextBootStick)}
		}
		return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: appText(session.UnfitTextIn(loc, loc.Tr("this stick"), pe.Unfit))}
	}
	return st, &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(apiTextUnfit, pe.Why)}
}

// Pair implements dbusapi.Backend: session.Pair, as 'tails-backup pair DEVICE' does.
func (api *API) Pair(ctx context.Context, device string) (string, error) {
	return api.startChecked(ctx, func(ctx context.Context) (string, error) {
		a := api.a
		switch {
		case a.isBackup:
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: a.loc.Tr(apiTextIsBackup)}
		case a.source == "":
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: a.loc.Tr(apiTextNoPersistence)}
		}
		resolve := func(ctx context.Context) (session.Stick, error) {
			st, err := a.pickTails(device, nil)
			if state := a.loadState(ctx); err == nil && state.IsPaired(st.UUID) {
				err = &dbusapi.Error{Kind: dbusapi.Refused, Text: a.loc.Tr(apiTextAlreadyPaired)}
			}
			return st, err
		}
		return a.startStickFlow(ctx, dbusapi.KindPair, device, a.loc.Tr(apiStepPair), plugPair, resolve, func(ctx context.Context, ui *flowUI, st session.Stick) flowEnd {
			dev := session.Device(st.Stick)
			ui.confirm = pairQuestion(a.loc)
			ui.closing = map[string]bool{session.PairedTextIn(a.loc): true}
			p := &session.Pair{
				Connect: a.connect, Boot: a.deps.Disks.BootPaths(), OwnRoot: a.deps.Disks.BootPaths().Persistence,
				Store: a.flowStore(), Helper: a.deps.Helper, Asker: a.deps.Asker, Now: a.deps.Clock.Now,
				Log: ui.log, UI: ui, Device: dev, Loc: a.loc, App: true,
			}
			if err := p.Run(ctx); err != nil {
				return flowEnd{res: ui.failed(err)}
			}
			text := ui.closingText()
			if text == "" {
				text = a.loc.Tr("Paired. Your backup Tails is updated each time you plug it in; unplug it and plug it in again to make the first update.")
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
				err = &dbusapi.Error{Kind: dbusapi.Refused, Text: a.loc.Tr(apiTextNotYourBackup)}
			}
			return st, err
		}
		loc := a.loc
		return a.startStickFlow(ctx, dbusapi.KindVerify, device, loc.Tr(apiStepVerify), plugVerify, resolve, func(ctx context.Context, ui *flowUI, st session.Stick) flowEnd {
			dev := session.Device(st.Stick)
			ui.setStep(loc.Tr(apiStepVerify))
			v := &session.Verify{
				Connect: a.connect, Boot: a.deps.Disks.BootPaths(), Store: a.flowStore(), Helper: a.deps.Helper,
				Asker: a.deps.Asker, Log: ui.log, UI: ui, Device: dev, Loc: loc, App: true,
			}
			rep, err := v.Run(ctx)
			if err != nil {
				return flowEnd{res: ui.failed(err), handled: []string{st.UUID}}
			}
			diffs, checks := ui.findings()
			res := dbusapi.Result{Result: dbusapi.ResultSuccess, Text: loc.Tr(textVerifyOK), Differences: diffs, Checks: checks}
			if rep.ChangesNotListed > 0 {
				ui.Say(loc.TrN("%d more difference was not listed.", "%d more differences were not listed.", int(rep.ChangesNotListed), rep.ChangesNotListed))
			}
			if len(rep.Features) > 0 {
				ui.Say(loc.Tr(textVerifyFeatures, loc.List(rep.Features...)))
			} else {
				ui.Say(loc.Tr(textVerifyNoFeatures))
			}
			problems := rep.Problems
			for _, c := range checks {
				if !c.OK {
					problems = max(problems, 1)
				}
			}
			check := dbusapi.Check{Name: loc.Tr(checkPersistence), OK: problems == 0, Text: loc.Tr(textCheckAccepted)}
			if problems > 0 {
				check.Text = loc.Tr(textCheckRefused)
			}
			res.Checks = append([]dbusapi.Check{check}, res.Checks...)
			n := max(rep.Created+rep.Updated+rep.MetadataOnly+rep.Deleted, int64(len(diffs))+rep.ChangesNotListed)
			if n > 0 || problems > 0 || rep.ErrorCount > 0 {
				found := []string{
					loc.TrN("%d difference", "%d differences", int(n), n),
					loc.TrN("%d problem", "%d problems", int(problems), problems),
				}
				if rep.ErrorCount > 0 {
					found = append(found, loc.TrN("%d file could not be compared", "%d files could not be compared", int(rep.ErrorCount), rep.ErrorCount))
				}
				res.Result = dbusapi.ResultFailed
				// TRANSLATORS: %s lists what was found ("3 differences, 1 problem").
				res.Text = loc.Tr("The backup is not an exact, valid copy: %s. Plug it in to update it, then verify it again.", loc.List(found...))
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
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: a.loc.Tr(apiTextRestoreIntoBackup)}
		case a.source == "":
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: a.loc.Tr(apiTextRestoreNoPersistence)}
		}
		loc := a.loc
		resolve := func(context.Context) (session.Stick, error) { return a.pickTails(device, nil) }
		return a.startStickFlow(ctx, dbusapi.KindRestore, device, loc.Tr(apiStepRestore), plugRestore, resolve, func(ctx context.Context, ui *flowUI, st session.Stick) flowEnd {
			dev := session.Device(st.Stick)
			r := &session.Restore{
				Connect: a.connect, Boot: a.deps.Disks.BootPaths(), OwnRoot: a.deps.Disks.BootPaths().Persistence,
				Store: a.flowStore(), Helper: a.deps.Helper, Asker: a.deps.Asker, Quiescer: a.deps.Quiescer,
				Now: a.deps.Clock.Now, Log: ui.log, UI: &restoreUI{flowUI: ui}, Device: dev, PlugWait: session.RestorePlugWait, Loc: loc, App: true,
			}
			done, err := r.Run(ctx)
			if err != nil {
				return flowEnd{res: ui.failed(err), handled: []string{st.UUID}}
			}
			rep := done.Report
			// TRANSLATORS: %[1]d files and folders were created, %[2]d replaced and %[3]d deleted; %[4]s is a size ("1.5 GB").
			res := dbusapi.Result{Result: dbusapi.ResultSuccess, Text: loc.TrN(
				"Your Persistent Storage is restored: %[1]d file or folder created, %[2]d replaced, %[3]d deleted, %[4]s copied. Restart Tails to use everything that was restored.",
				"Your Persistent Storage is restored: %[1]d files and folders created, %[2]d replaced, %[3]d deleted, %[4]s copied. Restart Tails to use everything that was restored.",
				int(rep.Created), rep.Created, rep.Updated, rep.Deleted, loc.Size(rep.BytesCopied))}
			if len(done.Skipped) > 0 {
				ui.Say(loc.Tr(textRestoreLeft, loc.List(done.Skipped...)))
			}
			// As session.RestoreResultIn says it, without what the app does not show.
			switch {
			case rep.ErrorCount > 0:
				n := int(min(rep.ErrorCount, 1<<31-1))
				res.Result = dbusapi.ResultFailed
				res.Text = loc.TrN("%d file could not be restored; everything else was restored; restart Tails to use what was restored.",
					"%d files could not be restored; everything else was restored; restart Tails to use what was restored.", n, rep.ErrorCount)
			case rep.Problems > 0:
				res.Result = dbusapi.ResultFailed
				res.Text = loc.Tr("Everything was restored, but Tails would not accept this Persistent Storage as it is (see the problems above); " +
					"after restarting Tails, turn on the features you need in the Persistent Storage settings; restart Tails to use what was restored.")
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
	case textMatches(s, u.a.loc.Tr("Opening the backup on %s.")):
		u.described = []string{}
	case textMatches(s, u.a.loc.Tr("Restoring from the backup on %s; do not unplug it.")):
		u.setStep(u.a.loc.Tr(apiStepRestoreCopy))
	case u.described != nil:
		u.described = append(u.described, appText(s))
		return
	}
	u.flowUI.Say(s)
}

// ConfirmRestore implements session.RestoreUI.
func (u *restoreUI) ConfirmRestore(ctx context.Context, other bool) bool {
	q := restoreQuestion(u.a.loc, other)
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
		loc := a.loc
		switch {
		case a.isBackup:
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(textCreateIsBackup)}
		case a.source == "":
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(apiTextNoPersistence)}
		case confirm == "":
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(apiTextNoConfirm)}
		case a.snap == nil:
			return "", &dbusapi.Error{Kind: dbusapi.NotFound, Text: loc.Tr(apiTextNoStick, device)}
		}
		boot := a.deps.Disks.BootPaths()
		used := persistenceUsed(boot.Persistence)
		store := a.deps.Store
		before, setAside, err := session.LoadStateIn(ctx, loc, store)
		if err != nil {
			return "", &dbusapi.Error{Kind: dbusapi.Failed, Text: appText(err.Error())}
		}
		target, err := findCreateTarget(loc, a.snap, session.CreateTargetsIn(loc, a.snap, boot, used, &before), device)
		if err != nil {
			return "", err
		}
		if !sameToken(createToken(a.snap, target), confirm) {
			return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(apiTextChanged)}
		}
		dev := session.Device(target.Stick)
		return a.startFlow(ctx, dbusapi.KindCreate, dev, "", loc.Tr(apiStepCreateIn), func(ctx context.Context, ui *flowUI) flowEnd {
			if setAside != nil {
				ui.Warn(session.StateErrorAppTextIn(loc, setAside))
			}
			return a.runCreate(ctx, ui, target, used, store.Path(), before, setAside != nil)
		}), nil
	})
}

// findCreateTarget is the target on device, which must be usable.
func findCreateTarget(loc *l10n.Locale, snap *udisks.Snapshot, targets []session.CreateTarget, device string) (session.CreateTarget, error) {
	o := snap.ByDevice(session.DevicePath(device))
	if device == "" || o == nil {
		return session.CreateTarget{}, &dbusapi.Error{Kind: dbusapi.NotFound, Text: loc.Tr(apiTextNoStick, device)}
	}
	drive := snap.DriveOf(o.Path)
	for _, t := range targets {
		if drive == nil || t.Drive.Path != drive.Path {
			continue
		}
		if t.Reason != "" {
			return t, &dbusapi.Error{Kind: dbusapi.Refused, Text: loc.Tr(apiTextUnfit, t.Reason)}
		}
		return t, nil
	}
	return session.CreateTarget{}, &dbusapi.Error{Kind: dbusapi.NotFound, Text: loc.Tr(apiTextNoStick, device)}
}

// runCreate is the job of Create: the passphrase through pinentry, the creation, the eject,
// then the pairing, as the command does them.
func (a *Agent) runCreate(ctx context.Context, ui *flowUI, target session.CreateTarget, used uint64, readPath string, before pairing.State, beforeDamaged bool) flowEnd {
	loc := a.loc
	name := session.DescribeIn(loc, target.Stick)
	ui.setStep(loc.Tr(apiStepCreatePass))
	pass, err := session.AskNewPassphraseApp(ctx, loc, a.deps.Asker, name)
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
		Drive: target.Drive.Path, Layout: l, Used: used, Progress: ui, Loc: loc, App: true,
	}
	if err := c.Run(ctx, pass); err != nil {
		return flowEnd{res: ui.failed(err)}
	}
	// Ejected before the pairing is saved, as the command does.
	ejectErr := c.Eject(ctx)
	now := a.deps.Clock.Now()
	store, err := a.flowStore()()
	if err == nil {
		err = session.SavePairingIn(ctx, loc, store, readPath, before, beforeDamaged, func(se *pairing.StateError) { ui.Warn(session.StateErrorAppTextIn(loc, se)) }, func(s *pairing.State) error {
			return c.Pair(s, target, now)
		})
	}
	if err != nil {
		return flowEnd{res: dbusapi.Result{Result: dbusapi.ResultFailed, Text: loc.Tr(textCreateNotPaired, name, session.Reason(err))}}
	}
	res := dbusapi.Result{Result: dbusapi.ResultSuccess, Text: loc.Tr(textCreateDone), Backup: c.UUID}
	if ejectErr != nil {
		res.Text = loc.Tr(textCreateNotEjected, name, session.Reason(ejectErr))
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
func erasedLines(loc *l10n.Locale, snap *udisks.Snapshot, t session.CreateTarget) []string {
	var out []string
	switch {
	case t.PairedUUID != "":
		out = append(out, session.ReplaceBackupTextIn(loc))
	case t.What != "":
		out = append(out, sentence(t.What))
	}
	for _, l := range session.ErasedLinesIn(loc, snap, t) {
		out = append(out, sentence(l))
	}
	return out
}

// textMatches: s is the text format (loc.Tr of a session text with one %s) with a value in it.
func textMatches(s, format string) bool {
	before, after, ok := strings.Cut(format, "%s")
	if !ok {
		return s == format
	}
	return len(s) >= len(before)+len(after) && strings.HasPrefix(s, before) && strings.HasSuffix(s, after)
}
