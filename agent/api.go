package agent

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"

	"tails-backup/clock"
	"tails-backup/dbusapi"
	"tails-backup/l10n"
	"tails-backup/notify"
	"tails-backup/pairing"
	"tails-backup/session"
)

// apiRequest is a call of the D-Bus API, run on the Run goroutine, which owns the agent's state.
type apiRequest func(ctx context.Context, timer clock.Timer)

// ServeAPI serves the agent's D-Bus API (docs/dbus-api.md) on conn, the session bus, until ctx
// ends; dbusapi.ErrNameTaken when another agent serves it. Call it before or after Run.
func (a *Agent) ServeAPI(ctx context.Context, conn *dbus.Conn) (*dbusapi.Service, error) {
	svc, err := dbusapi.Serve(ctx, conn, &API{a: a}, a.log.WithField("component", "api"))
	if err != nil {
		return nil, err
	}
	a.events.SetSink(svc)
	return svc, nil
}

// API is the agent as the D-Bus API's Backend: each call runs on the agent's Run goroutine.
type API struct{ a *Agent }

var _ dbusapi.Backend = (*API)(nil)

// do runs fn on the Run goroutine and returns its error; Failed when the agent does not answer
// before ctx ends.
func (api *API) do(ctx context.Context, fn func(ctx context.Context, timer clock.Timer) error) error {
	done := make(chan error, 1)
	req := func(ctx context.Context, timer clock.Timer) { done <- fn(ctx, timer) }
	select {
	case api.a.requests <- req:
	case <-ctx.Done():
		return &dbusapi.Error{Kind: dbusapi.Failed, Text: api.a.loc.Tr(apiTextNoAnswer)}
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return &dbusapi.Error{Kind: dbusapi.Failed, Text: api.a.loc.Tr(apiTextNoAnswer)}
	}
}

// Status implements dbusapi.Backend.
func (api *API) Status(ctx context.Context) (dbusapi.Status, error) {
	var out dbusapi.Status
	err := api.do(ctx, func(ctx context.Context, _ clock.Timer) error {
		out = api.a.status(ctx)
		return nil
	})
	return out, err
}

func (a *Agent) status(ctx context.Context) dbusapi.Status {
	state := a.loadState(ctx)
	now := a.deps.Clock.Now()
	plugged := map[string]session.Classified{}
	if a.snap != nil {
		for _, st := range session.Classify(a.snap, a.deps.Disks.BootPaths(), state.IsPaired) {
			if st.Kind == session.Paired {
				plugged[st.UUID] = st
			}
		}
	}
	out := dbusapi.Status{
		IsBackup:           a.isBackup,
		PersistentStorage:  a.source != "",
		RemindersEnabled:   !state.Reminder.Disabled,
		ReminderPeriodDays: uint32(state.ReminderPeriod() / (24 * time.Hour)),
		Paused:             state.Paused(now),
		Backups:            []dbusapi.Backup{},
	}
	if until := state.Reminder.SnoozedUntil; until.After(now) {
		out.SnoozedUntil = until
	}
	if out.Paused {
		out.PausedText = a.loc.Tr(apiTextPausedByRestore)
		if state.PausedOnlyByUpdates(now) {
			out.PausedText = a.loc.Tr(apiTextPausedByUpdate)
		}
	}
	for _, b := range state.Backups {
		ob := dbusapi.Backup{UUID: b.UUID, Name: backupName(a.loc, b), Paired: b.Added, LastSuccess: b.LastSuccess, AgeText: session.AgeTextIn(a.loc, b.LastSuccess, now),
			PassphraseFree: b.KeySlot, PassphraseFreeNext: b.KeySlotWanted && !b.KeySlot}
		if b.LastAttempt != nil {
			ob.LastAttempt, ob.LastResult, ob.LastMessage = b.LastAttempt.Time, string(b.LastAttempt.Result), b.LastAttempt.Message
		}
		if st, ok := plugged[b.UUID]; ok {
			ob.Plugged, ob.Device, ob.Name = true, session.Device(st.Stick.Stick), session.NameIn(a.loc, st.Stick.Stick)
		}
		out.Backups = append(out.Backups, ob)
	}
	r := session.DecideReminder(session.ReminderInput{State: state, Now: now, StickPresent: len(plugged) > 0 || a.job != nil, IsBackupTails: a.isBackup})
	if !r.Due {
		out.NextReminder = r.Next
	} else {
		out.NextReminder = now
	}
	out.ReminderText = session.ReminderStatusTextIn(a.loc, r, now)
	switch {
	case a.job != nil:
		out.Job = &dbusapi.Job{ID: a.job.id, Kind: dbusapi.KindUpdate, Backup: a.job.uuid, Device: a.job.device, Automatic: a.job.automatic}
	case a.promoteJob != "":
		out.Job = &dbusapi.Job{ID: a.promoteJob, Kind: dbusapi.KindPromote}
	case a.flow != nil:
		out.Job = &dbusapi.Job{ID: a.flow.id, Kind: a.flow.kind, Backup: a.flow.backup, Device: a.flow.device}
	}
	return out
}

// backupName is a paired backup's name when it is not plugged in: its label and size as stored.
func backupName(loc *l10n.Locale, b pairing.PairedBackup) string {
	name := b.Label
	if name == "" {
		name = loc.Tr("USB stick")
	}
	if b.Size > 0 {
		// TRANSLATORS: a USB stick's name and size ("Kingston DataTraveler, 16 GB").
		name = loc.Tr("%[1]s, %[2]s", name, loc.Size(int64(b.Size)))
	}
	return name
}

// sticksChanged tells the API when the Tails sticks plugged in changed.
func (a *Agent) sticksChanged(sticks []session.Classified) {
	var b strings.Builder
	for _, st := range sticks {
		fmt.Fprintf(&b, "%s %s %d;", st.Drive.Path, st.UUID, st.Kind)
	}
	if s := b.String(); s != a.sticksSeen {
		a.sticksSeen = s
		a.events.Changed()
	}
}

// ListSticks implements dbusapi.Backend.
func (api *API) ListSticks(ctx context.Context, purpose string) ([]dbusapi.StickInfo, error) {
	var out []dbusapi.StickInfo
	err := api.do(ctx, func(ctx context.Context, _ clock.Timer) error {
		out = api.a.listSticks(ctx, purpose)
		return nil
	})
	return out, err
}

func (a *Agent) listSticks(ctx context.Context, purpose string) []dbusapi.StickInfo {
	out := []dbusapi.StickInfo{}
	if a.snap == nil {
		return out
	}
	state := a.loadState(ctx)
	boot := a.deps.Disks.BootPaths()
	if purpose == dbusapi.PurposeCreate {
		for _, c := range session.CreateTargetsIn(a.loc, a.snap, boot, persistenceUsed(boot.Persistence), &state) {
			size := session.Size(c.Stick)
			info := dbusapi.StickInfo{
				Device: session.Device(c.Stick), Name: session.NameIn(a.loc, c.Stick), Size: size, SizeText: a.loc.Size(int64(size)),
				Usable: c.Reason == "", Paired: c.PairedUUID != "", BackupOfThis: c.PairedUUID != "",
			}
			if c.Reason != "" {
				info.Reason = sentence(c.Reason)
			} else {
				info.Erase, info.Confirm = erasedLines(a.loc, a.snap, c), createToken(a.snap, c)
			}
			out = append(out, info)
		}
		return out
	}
	for _, st := range session.Classify(a.snap, boot, state.IsPaired) {
		size := session.Size(st.Stick.Stick)
		info := dbusapi.StickInfo{
			Device: session.Device(st.Stick.Stick), Name: session.NameIn(a.loc, st.Stick.Stick), Size: size, SizeText: a.loc.Size(int64(size)),
			Paired: st.Kind == session.Paired, BackupOfThis: st.Kind == session.Paired,
		}
		switch {
		case st.Kind == session.Ignored:
			info.Reason = a.loc.Tr(apiTextUnusable)
		case purpose == dbusapi.PurposePair && info.Paired:
			info.Reason = a.loc.Tr(apiTextAlreadyPaired)
		case purpose == dbusapi.PurposeVerify && !info.Paired:
			info.Reason = a.loc.Tr(apiTextNotYourBackup)
		}
		info.Usable = info.Reason == ""
		out = append(out, info)
	}
	return out
}

// persistenceUsed is how many bytes this Tails' Persistent Storage uses (0 when unknown).
func persistenceUsed(root string) uint64 {
	var fs unix.Statfs_t
	if root == "" || unix.Statfs(root, &fs) != nil {
		return 0
	}
	return (fs.Blocks - fs.Bfree) * uint64(fs.Bsize)
}

// UpdateNow implements dbusapi.Backend: the update of a paired backup plugged in, as plugging
// it in starts it.
func (api *API) UpdateNow(ctx context.Context, backup string) (string, error) {
	var id string
	err := api.do(ctx, func(ctx context.Context, timer clock.Timer) error {
		a := api.a
		switch {
		case a.busy():
			return &dbusapi.Error{Kind: dbusapi.Busy, Text: api.a.loc.Tr(apiTextBusy)}
		case a.isBackup:
			return &dbusapi.Error{Kind: dbusapi.Refused, Text: api.a.loc.Tr(apiTextIsBackup)}
		case a.source == "":
			return &dbusapi.Error{Kind: dbusapi.Refused, Text: api.a.loc.Tr(apiTextNoPersistence)}
		}
		state := a.loadState(ctx)
		if state.Paused(a.deps.Clock.Now()) {
			if state.PausedOnlyByUpdates(a.deps.Clock.Now()) {
				return &dbusapi.Error{Kind: dbusapi.Busy, Text: api.a.loc.Tr(apiTextPausedByUpdate)}
			}
			return &dbusapi.Error{Kind: dbusapi.Refused, Text: api.a.loc.Tr(apiTextPausedByRestore)}
		}
		if a.snap == nil {
			return &dbusapi.Error{Kind: dbusapi.NotFound, Text: api.a.loc.Tr(apiTextNotPlugged)}
		}
		for _, st := range session.Classify(a.snap, a.deps.Disks.BootPaths(), state.IsPaired) {
			if st.Kind == session.Paired && (backup == "" || strings.EqualFold(backup, st.UUID)) {
				id = a.startJob(ctx, st, false)
				a.scheduleReminder(ctx, timer)
				return nil
			}
		}
		return &dbusapi.Error{Kind: dbusapi.NotFound, Text: api.a.loc.Tr(apiTextNotPlugged)}
	})
	return id, err
}

// Promote implements dbusapi.Backend: what the backup-Tails warning's "Make this my main Tails"
// does once confirmed.
func (api *API) Promote(ctx context.Context) (string, error) {
	var id string
	err := api.do(ctx, func(ctx context.Context, _ clock.Timer) error {
		a := api.a
		switch {
		case a.busy():
			return &dbusapi.Error{Kind: dbusapi.Busy, Text: api.a.loc.Tr(apiTextBusy)}
		case !a.isBackup:
			return &dbusapi.Error{Kind: dbusapi.Refused, Text: api.a.loc.Tr(apiTextNotBackup)}
		}
		a.closeNote(ctx, &a.confirmID)
		id = a.promote(ctx)
		return nil
	})
	return id, err
}

// Cancel implements dbusapi.Backend: the Cancel of the update's notification.
func (api *API) Cancel(ctx context.Context, job string) error {
	return api.do(ctx, func(ctx context.Context, _ clock.Timer) error {
		a := api.a
		switch {
		case a.job != nil && a.job.id == job:
			a.job.userCancel()
			return nil
		case a.flow != nil && a.flow.id == job:
			a.flow.ui.userCancel()
			return nil
		case a.promoteJob != "" && a.promoteJob == job:
			return &dbusapi.Error{Kind: dbusapi.Refused, Text: api.a.loc.Tr(apiTextPromoteNoCancel)}
		}
		return &dbusapi.Error{Kind: dbusapi.NotFound, Text: api.a.loc.Tr(apiTextNoJob)}
	})
}

// Answer implements dbusapi.Backend.
func (api *API) Answer(ctx context.Context, job, question, choice string) error {
	return api.do(ctx, func(ctx context.Context, _ clock.Timer) error {
		if a := api.a; a.job != nil && a.job.id == job {
			return a.job.answer(question, choice)
		}
		if a := api.a; a.flow != nil && a.flow.id == job {
			return a.flow.ui.questions.Answer(job, question, choice)
		}
		return &dbusapi.Error{Kind: dbusapi.NotFound, Text: api.a.loc.Tr(apiTextNoQuestion)}
	})
}

// SetReminders implements dbusapi.Backend, as 'tails-backup reminders on|off' does (turning
// them on ends a snooze).
func (api *API) SetReminders(ctx context.Context, enabled bool, periodDays uint32) error {
	return api.changeReminders(ctx, func(s *pairing.State) {
		s.Reminder.Disabled = !enabled
		if enabled {
			s.Reminder.SnoozedUntil = time.Time{}
		}
		if periodDays != 0 {
			s.Reminder.PeriodSeconds = int64(periodDays) * 24 * 3600
		}
	})
}

// Snooze implements dbusapi.Backend: "Remind me tomorrow".
func (api *API) Snooze(ctx context.Context) error {
	now := api.a.deps.Clock.Now()
	return api.changeReminders(ctx, func(s *pairing.State) { s.Snooze(now) })
}

func (api *API) changeReminders(ctx context.Context, change func(*pairing.State)) error {
	return api.do(ctx, func(ctx context.Context, timer clock.Timer) error {
		a := api.a
		a.followStatePath()
		if _, err := a.deps.Store.Update(ctx, func(s *pairing.State) error { change(s); return nil }); err != nil {
			a.log.WithError(err).Warn("save the reminder settings")
			return &dbusapi.Error{Kind: dbusapi.Failed, Text: api.a.loc.Tr(apiTextNotSaved, session.Reason(err))}
		}
		a.closeNote(ctx, &a.reminderID)
		a.scheduleReminder(ctx, timer)
		a.events.Changed()
		return nil
	})
}

// noteText is a notification as one text: its summary and body.
func noteText(n notify.Notification) string {
	if n.Body == "" {
		return n.Summary + "."
	}
	return n.Summary + ". " + n.Body
}
