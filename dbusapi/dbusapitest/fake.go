// Package dbusapitest provides a fake Backend of the Backup API that behaves like the agent
// (jobs that report progress, ask questions and finish), in named scenarios, for the tests of
// dbusapi, of the app and of fakebackupd.
package dbusapitest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"tails-backup/dbusapi"
	"tails-backup/l10n"
)

// Scenarios are the worlds NewFake knows, with what each shows.
var Scenarios = map[string]string{
	"first-run":      "no backup yet; a blank 16 GB stick and a 4 GB one that is too small are plugged in",
	"paired":         "one backup, updated 3 days ago, not plugged in",
	"plugged":        "one backup, updated 3 days ago, plugged in at /dev/sdb",
	"updating":       "one backup plugged in, whose automatic update is under way",
	"failed":         "one backup whose last update failed (its stick was pulled out)",
	"paused":         "one backup; automatic updates are paused by a restore",
	"backup":         "this Tails is itself a backup Tails: Promote is offered",
	"no-persistence": "one backup; this Tails' Persistent Storage is locked",
}

// ScenarioNames lists the scenarios, sorted.
func ScenarioNames() []string {
	names := make([]string, 0, len(Scenarios))
	for n := range Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// The backups and sticks of the scenarios.
const (
	BackupUUID    = "2f4d1c7e-8a3b-4c5d-9e6f-0a1b2c3d4e5f"
	BackupName    = "SanDisk Cruzer Blade, 16.0 GB"
	NewBackupUUID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	BlankDevice   = "/dev/sdb"
	SmallDevice   = "/dev/sdc"
	TailsDevice   = "/dev/sdd"
	BackupDevice  = "/dev/sdb"
	confirmToken  = "sdb-4C530001230915117394-0"
)

// Answer IDs of the fake's questions.
const (
	QuestionApps    = "apps-1"
	QuestionRestore = "restore-confirm"
	ChoiceCancel    = "cancel"
	ChoiceClose     = "close-app"
	ChoiceSkip      = "skip-app"
	ChoiceRestore   = "restore"
	QuestionForget  = "forget-confirm"
	ChoiceForget    = "forget"
)

// What a job of the fake says while it waits for the backup whose updates without the
// passphrase it turns on or off, as the agent does.
const PlugPassphraseFreeText = "Plug in your backup Tails: the change starts as soon as it is plugged in."

// Fake is a Backend of a scenario. Its jobs take a few Steps each. Like the agent, it words its
// texts in the session's language (its Locale).
type Fake struct {
	Events    dbusapi.Relay // where the fake reports; set its sink to the Service
	loc       *l10n.Locale
	questions *dbusapi.Questions
	step      time.Duration
	now       func() time.Time

	mu      sync.Mutex
	status  dbusapi.Status
	sticks  map[string][]dbusapi.StickInfo // by purpose
	job     *fakeJob
	nextJob int
	// held are the scenario's sticks while they are not plugged in (Unplug), heldBackups the
	// backups plugged in then; plugAfter is how long after a job starts waiting they are.
	held        map[string][]dbusapi.StickInfo
	heldBackups map[string]bool
	plugAfter   time.Duration
	plugWait    time.Duration // how long a job waits for its stick, as the agent's
}

// PlugWait is how long the fake's jobs wait for their stick, as the agent's (agent.DefaultPlugWait).
const PlugWait = 10 * time.Minute

// What a job of the fake says while it waits for its stick, as the agent does.
const (
	PlugPairText    = "Plug in the Tails stick to pair as your backup: the pairing starts as soon as it is plugged in."
	PlugVerifyText  = "Plug in your backup Tails: the comparison starts as soon as it is plugged in."
	PlugRestoreText = "Plug in your backup Tails: the restore starts as soon as it is plugged in. Nothing is changed before you confirm."
	PlugCancelled   = "Cancelled before the stick was plugged in, so nothing was changed."
)

// Unplug makes the scenario start with none of its sticks plugged in: a Pair, Verify or Restore
// of no device then waits for its stick (saying so through Progress.WaitingForStick), and the
// sticks are plugged in after, that long after the job started waiting. Call it before any job.
func (f *Fake) Unplug(after time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held, f.sticks, f.plugAfter = f.sticks, map[string][]dbusapi.StickInfo{}, after
	f.heldBackups = map[string]bool{}
	for i := range f.status.Backups {
		b := &f.status.Backups[i]
		f.heldBackups[b.UUID] = b.Plugged
		b.Plugged, b.Device = false, ""
	}
}

// SetPlugWait sets how long a job waits for its stick (PlugWait by default).
func (f *Fake) SetPlugWait(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plugWait = d
}

// plugIn plugs in the sticks Unplug held back.
func (f *Fake) plugIn() {
	f.mu.Lock()
	if f.held == nil {
		f.mu.Unlock()
		return
	}
	f.sticks, f.held = f.held, nil
	for i := range f.status.Backups {
		b := &f.status.Backups[i]
		if f.heldBackups[b.UUID] {
			b.Plugged, b.Device = true, BackupDevice
		}
	}
	f.mu.Unlock()
	f.Events.Changed()
}

type fakeJob struct {
	info   dbusapi.Job
	cancel context.CancelFunc
	done   chan struct{}
}

// NewFake returns the fake in a scenario (one of Scenarios), speaking English; its jobs advance
// every step.
func NewFake(scenario string, step time.Duration) (*Fake, error) {
	return NewFakeIn(nil, scenario, step)
}

// NewFakeIn is NewFake speaking the language of loc, as the agent does (nil: English): the
// texts of its status, sticks, jobs and questions are translated through the project's catalog,
// with the sizes and the values inserted as l10n writes them.
func NewFakeIn(loc *l10n.Locale, scenario string, step time.Duration) (*Fake, error) {
	if _, ok := Scenarios[scenario]; !ok {
		return nil, fmt.Errorf("no scenario %q: choose one of %s", scenario, strings.Join(ScenarioNames(), ", "))
	}
	f := &Fake{loc: loc, step: step, now: time.Now, sticks: map[string][]dbusapi.StickInfo{}, plugWait: PlugWait}
	f.questions = dbusapi.NewQuestions(&f.Events, 0)
	now := f.now()
	f.status = dbusapi.Status{
		PersistentStorage:  true,
		RemindersEnabled:   true,
		ReminderPeriodDays: 7,
	}
	backup := dbusapi.Backup{
		UUID:        BackupUUID,
		Name:        BackupName,
		Paired:      now.Add(-30 * 24 * time.Hour).Truncate(time.Second),
		LastSuccess: now.Add(-3 * 24 * time.Hour).Truncate(time.Second),
		LastAttempt: now.Add(-3 * 24 * time.Hour).Truncate(time.Second),
		LastResult:  "success",
		AgeText:     loc.Tr("Updated %s ago", loc.Days(3*24*time.Hour)),
	}
	plug := func() {
		backup.Plugged, backup.Device = true, BackupDevice
	}
	switch scenario {
	case "first-run":
		f.status.ReminderText = loc.Tr("No reminder until you have a backup Tails.")
	case "plugged", "updating":
		plug()
	case "failed":
		backup.LastAttempt = now.Add(-time.Hour).Truncate(time.Second)
		backup.LastResult = "failed"
		backup.LastMessage = loc.Tr("Your backup Tails was unplugged during the update. Plug it in again to finish the update.")
	case "paused":
		f.status.Paused = true
		f.status.PausedText = loc.Tr("Automatic updates are paused while you restore from a backup; they start again when the restore is finished.")
	case "backup":
		f.status.IsBackup = true
		f.status.RemindersEnabled = false
		f.status.ReminderText = loc.Tr("No reminder: this Tails is itself a backup, its main Tails does the reminding.")
	case "no-persistence":
		f.status.PersistentStorage = false
	}
	if scenario != "first-run" && scenario != "backup" {
		f.status.Backups = []dbusapi.Backup{backup}
		f.status.NextReminder = backup.LastSuccess.Add(7 * 24 * time.Hour)
		f.status.ReminderText = f.nextReminder(4)
	}
	f.sticks = scenarioSticks(loc, scenario)
	if scenario == "updating" {
		if _, err := f.start(dbusapi.Job{Kind: dbusapi.KindUpdate, Backup: BackupUUID, Device: BackupDevice, Automatic: true}, f.runUpdate); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// stickName is a stick's name as the agent words it: its model and size.
func stickName(loc *l10n.Locale, model string, size int64) string {
	return loc.Tr("%[1]s, %[2]s", model, loc.Size(size))
}

func scenarioSticks(loc *l10n.Locale, scenario string) map[string][]dbusapi.StickInfo {
	blank := dbusapi.StickInfo{
		Device: BlankDevice, Name: stickName(loc, "SanDisk Cruzer Blade", 16_008_609_792), Size: 16_008_609_792, SizeText: loc.Size(16_008_609_792),
		Usable: true,
		Erase: []string{loc.Tr("The Tails %s on it", "6.10"),
			loc.TrN("%[1]d partition, %[2]s", "%[1]d partitions, %[2]s", 2, 2, loc.Size(14_200_000_000))},
		Confirm: confirmToken,
	}
	small := dbusapi.StickInfo{
		Device: SmallDevice, Name: stickName(loc, "Kingston DataTraveler", 4_001_366_016), Size: 4_001_366_016, SizeText: loc.Size(4_001_366_016),
		Reason: loc.Tr("This stick is too small: a backup of this Tails needs at least %[1]s. Use a stick of %[2]d GB or more.", loc.Size(8_000_000_000), 8),
	}
	tailsStick := dbusapi.StickInfo{
		Device: TailsDevice, Name: stickName(loc, "Samsung Flash Drive", 32_017_047_552), Size: 32_017_047_552, SizeText: loc.Size(32_017_047_552), Usable: true,
	}
	backup := dbusapi.StickInfo{
		Device: BackupDevice, Name: stickName(loc, "SanDisk Cruzer Blade", 16_008_609_792), Size: 16_008_609_792, SizeText: loc.Size(16_008_609_792),
		Usable: true, Paired: true, BackupOfThis: true,
	}
	switch scenario {
	case "first-run":
		smallCreate := small
		smallCreate.Erase = []string{loc.TrN("%[1]d partition, %[2]s", "%[1]d partitions, %[2]s", 1, 1, loc.Size(4_000_000_000))}
		notTails := func(s dbusapi.StickInfo) dbusapi.StickInfo {
			s.Usable, s.Erase, s.Confirm = false, nil, ""
			s.Reason = loc.Tr("This stick has no Tails on it: create a backup Tails on it instead.")
			return s
		}
		return map[string][]dbusapi.StickInfo{
			dbusapi.PurposeCreate:  {blank, smallCreate},
			dbusapi.PurposePair:    {notTails(blank), notTails(small), tailsStick},
			dbusapi.PurposeRestore: {notTails(blank), notTails(small)},
			dbusapi.PurposeVerify:  {notTails(blank), notTails(small)},
		}
	case "plugged", "updating", "failed", "paused", "no-persistence":
		if scenario != "plugged" && scenario != "updating" {
			return map[string][]dbusapi.StickInfo{}
		}
		pairedAlready := backup
		pairedAlready.Usable = false
		pairedAlready.Reason = loc.Tr("This stick is already your backup Tails: plug it in to update it.")
		noCreate := backup
		noCreate.Usable = false
		noCreate.Reason = loc.Tr("This stick is your backup Tails: creating a backup on it would erase it. Use another stick.")
		return map[string][]dbusapi.StickInfo{
			dbusapi.PurposeCreate:  {noCreate},
			dbusapi.PurposePair:    {pairedAlready},
			dbusapi.PurposeRestore: {backup},
			dbusapi.PurposeVerify:  {backup},
		}
	}
	return map[string][]dbusapi.StickInfo{}
}

// SetNow sets the fake's clock (time.Now by default); call it before any job.
func (f *Fake) SetNow(now func() time.Time) { f.now = now }

// Status implements dbusapi.Backend.
func (f *Fake) Status(ctx context.Context) (dbusapi.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.status
	st.Backups = slices.Clone(st.Backups)
	if f.job != nil {
		j := f.job.info
		if j.Progress != nil {
			p := *j.Progress
			j.Progress = &p
		}
		st.Job = &j
	}
	return st, nil
}

// ListSticks implements dbusapi.Backend.
func (f *Fake) ListSticks(ctx context.Context, purpose string) ([]dbusapi.StickInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sticks[purpose]), nil
}

// stick finds the stick of device for a purpose: NotFound when not plugged in, Refused with
// its reason when it cannot serve.
func (f *Fake) stick(purpose, device string) (dbusapi.StickInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sticks[purpose] {
		if s.Device == device {
			if !s.Usable {
				return s, &dbusapi.Error{Kind: dbusapi.Refused, Text: s.Reason}
			}
			return s, nil
		}
	}
	return dbusapi.StickInfo{}, &dbusapi.Error{Kind: dbusapi.NotFound, Text: f.loc.Tr("No stick is plugged in at %s: plug it in, or choose a stick from the list.", device)}
}

// start runs a job unless one runs (Busy).
func (f *Fake) start(info dbusapi.Job, run func(ctx context.Context, id string) dbusapi.Result) (string, error) {
	return f.startAt(info, dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: f.loc.Tr("Starting."), Cancellable: true}, run)
}

// startAt is start with the job's first Progress.
func (f *Fake) startAt(info dbusapi.Job, first dbusapi.Progress, run func(ctx context.Context, id string) dbusapi.Result) (string, error) {
	f.mu.Lock()
	if f.job != nil {
		f.mu.Unlock()
		return "", &dbusapi.Error{Kind: dbusapi.Busy, Text: f.loc.Tr("Another backup task is under way: wait for it to finish, or cancel it.")}
	}
	f.nextJob++
	info.ID = fmt.Sprintf("%s-%d", info.Kind, f.nextJob)
	ctx, cancel := context.WithCancel(context.Background())
	j := &fakeJob{info: info, cancel: cancel, done: make(chan struct{})}
	f.job = j
	f.mu.Unlock()
	f.progress(info.ID, first)
	f.Events.Changed()
	go func() {
		defer close(j.done)
		res := run(ctx, info.ID)
		if res.Result == "" {
			res.Result = dbusapi.ResultSuccess
		}
		f.mu.Lock()
		f.job = nil
		f.mu.Unlock()
		cancel()
		f.Events.Finished(info.ID, res)
		f.Events.Changed()
	}()
	return info.ID, nil
}

// progress reports a job's progress and keeps it for Status, as the agent does.
func (f *Fake) progress(id string, p dbusapi.Progress) {
	f.mu.Lock()
	if f.job != nil && f.job.info.ID == id {
		f.job.info.Progress = &p
	}
	f.mu.Unlock()
	f.Events.Progress(id, p)
}

// Wait waits until no job runs.
func (f *Fake) Wait(ctx context.Context) error {
	f.mu.Lock()
	j := f.job
	f.mu.Unlock()
	if j == nil {
		return nil
	}
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pause waits a step; false when the job is cancelled.
func (f *Fake) pause(ctx context.Context) bool {
	t := time.NewTimer(f.step)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// cancelled is how a cancelled update ends.
func (f *Fake) cancelled() dbusapi.Result {
	return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. Nothing was lost; the next update finishes the job.")}
}

// nextReminder says when the next reminder comes, days from now.
func (f *Fake) nextReminder(days int) string {
	return f.loc.TrN("Next reminder in about %d day, unless your backup is updated before.",
		"Next reminder in about %d days, unless your backup is updated before.", days, days)
}

// copySteps reports a copy of total bytes in steps; false when cancelled.
func (f *Fake) copySteps(ctx context.Context, id, step string, total float64) bool {
	for i := 0; i <= 4; i++ {
		if !f.pause(ctx) {
			return false
		}
		frac := float64(i) / 4
		f.progress(id, dbusapi.Progress{
			Fraction: frac, Step: step, Cancellable: true, SecondsLeft: int64(4-i) * 30,
			Text: f.loc.Tr("Copying: %[1]s of %[2]s", f.loc.Size(int64(frac*total*1e9)), f.loc.Size(int64(total*1e9))),
		})
	}
	return true
}

// UpdateNow implements dbusapi.Backend.
func (f *Fake) UpdateNow(ctx context.Context, backup string) (string, error) {
	f.mu.Lock()
	var found *dbusapi.Backup
	for i, b := range f.status.Backups {
		if b.Plugged && (backup == "" || b.UUID == backup) {
			found = &f.status.Backups[i]
		}
	}
	var info dbusapi.Job
	if found != nil {
		info = dbusapi.Job{Kind: dbusapi.KindUpdate, Backup: found.UUID, Device: found.Device}
	}
	f.mu.Unlock()
	if found == nil {
		return "", &dbusapi.Error{Kind: dbusapi.NotFound, Text: f.loc.Tr("Your backup Tails is not plugged in: plug it in to update it.")}
	}
	return f.start(info, f.runUpdate)
}

func (f *Fake) runUpdate(ctx context.Context, id string) dbusapi.Result {
	f.progress(id, dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: f.loc.Tr("Unlocking your backup Tails."), Cancellable: true})
	if !f.pause(ctx) {
		return f.cancelled()
	}
	{ // the update asks about an application open, as the agent's does when one is
		choice, err := f.questions.Ask(ctx, id, dbusapi.Question{
			ID:    QuestionApps,
			Title: f.loc.Tr("Close %s?", "Thunderbird"),
			Body: f.loc.Tr("Close it to back up its data, or skip that data this time (your backup keeps its previous copy): "+
				"while %[1]s is open, the data of %[2]s might be copied half-written.", "Thunderbird", "Thunderbird Email Client"),
			Choices: []dbusapi.Choice{
				{ID: ChoiceCancel, Label: f.loc.Tr("Cancel update")},
				{ID: ChoiceClose, Label: f.loc.Tr("Close %s", "Thunderbird")},
				{ID: ChoiceSkip, Label: f.loc.Tr("Skip its data")},
			},
		})
		if err != nil || choice == ChoiceCancel {
			return f.cancelled()
		}
		if choice == ChoiceSkip {
			f.Events.Message(id, dbusapi.LevelWarning, f.loc.Tr("The data of %s is not updated this time; your backup keeps its previous copy.", "Thunderbird"))
		}
	}
	if !f.copySteps(ctx, id, f.loc.Tr("Copying your Persistent Storage."), 3.4) {
		return f.cancelled()
	}
	f.mu.Lock()
	for i, b := range f.status.Backups {
		if b.UUID == BackupUUID {
			now := f.now().Truncate(time.Second)
			b.LastSuccess, b.LastAttempt, b.LastResult, b.LastMessage, b.AgeText = now, now, "success", "", f.loc.Tr("Updated less than a day ago")
			f.status.Backups[i] = b
			f.status.NextReminder = now.Add(7 * 24 * time.Hour)
			f.status.ReminderText = f.nextReminder(7)
		}
	}
	f.mu.Unlock()
	return dbusapi.Result{Result: dbusapi.ResultSuccess, Text: f.loc.Tr("Your backup Tails is up to date. You can unplug it.")}
}

// Create implements dbusapi.Backend.
func (f *Fake) Create(ctx context.Context, device, confirm string) (string, error) {
	s, err := f.stick(dbusapi.PurposeCreate, device)
	if err != nil {
		return "", err
	}
	if confirm != s.Confirm {
		return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: f.loc.Tr("This stick changed since you confirmed erasing it: look at what it holds again and confirm again.")}
	}
	return f.start(dbusapi.Job{Kind: dbusapi.KindCreate, Device: device}, func(ctx context.Context, id string) dbusapi.Result {
		f.Events.Message(id, dbusapi.LevelInfo, f.loc.Tr("Everything on %s is being erased.", s.Name))
		if !f.copySteps(ctx, id, f.loc.Tr("Copying Tails to the new stick."), 1.6) {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. The stick is not a backup Tails; create it again to use it.")}
		}
		f.addBackup(NewBackupUUID, s)
		return dbusapi.Result{Text: f.loc.Tr("Your backup Tails is ready: it is updated each time you plug it in."), Backup: NewBackupUUID}
	})
}

func (f *Fake) addBackup(uuid string, s dbusapi.StickInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now().Truncate(time.Second)
	f.status.Backups = append(f.status.Backups, dbusapi.Backup{
		UUID: uuid, Name: s.Name, Paired: now, LastSuccess: now, LastAttempt: now, LastResult: "success",
		AgeText: f.loc.Tr("Updated less than a day ago"), Plugged: true, Device: s.Device,
	})
	f.status.NextReminder = now.Add(7 * 24 * time.Hour)
	f.status.ReminderText = f.nextReminder(7)
	// The stick is now this Tails' backup, as ListSticks says from then on: it can be checked
	// and restored from, not created on nor paired again.
	backup := dbusapi.StickInfo{Device: s.Device, Name: s.Name, Size: s.Size, SizeText: s.SizeText, Usable: true, Paired: true, BackupOfThis: true}
	noCreate, pairedAlready := backup, backup
	noCreate.Usable, noCreate.Reason = false, f.loc.Tr("This stick is your backup Tails: creating a backup on it would erase it. Use another stick.")
	pairedAlready.Usable, pairedAlready.Reason = false, f.loc.Tr("This stick is already your backup Tails: plug it in to update it.")
	for purpose, st := range map[string]dbusapi.StickInfo{
		dbusapi.PurposeCreate: noCreate, dbusapi.PurposePair: pairedAlready,
		dbusapi.PurposeRestore: backup, dbusapi.PurposeVerify: backup,
	} {
		f.sticks[purpose] = replaceStick(f.sticks[purpose], st)
	}
}

// replaceStick is sticks with the one at st.Device replaced by st, or st added first.
func replaceStick(sticks []dbusapi.StickInfo, st dbusapi.StickInfo) []dbusapi.StickInfo {
	out := []dbusapi.StickInfo{st}
	for _, s := range sticks {
		if s.Device != st.Device {
			out = append(out, s)
		}
	}
	return out
}

// onlyStick is the only usable stick for purpose (device ""): NotFound when none is plugged in.
func (f *Fake) onlyStick(purpose string) (dbusapi.StickInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var usable []dbusapi.StickInfo
	for _, s := range f.sticks[purpose] {
		if s.Usable {
			usable = append(usable, s)
		}
	}
	switch len(usable) {
	case 0:
		return dbusapi.StickInfo{}, &dbusapi.Error{Kind: dbusapi.NotFound, Text: f.loc.Tr("No usable stick is plugged in: plug one in.")}
	case 1:
		return usable[0], nil
	}
	return dbusapi.StickInfo{}, &dbusapi.Error{Kind: dbusapi.Refused, Text: f.loc.Tr("Several Tails sticks are plugged in: choose one in the list.")}
}

// startStick starts a job of kind on the stick of device for purpose, as the agent does: with
// no device and no stick to use plugged in, the job waits for one, saying wait, until the
// sticks Unplug held back are plugged in, Cancel or PlugWait.
func (f *Fake) startStick(purpose, kind, device, backup, wait string, run func(ctx context.Context, id string, s dbusapi.StickInfo) dbusapi.Result) (string, error) {
	var s dbusapi.StickInfo
	var err error
	if device == "" {
		s, err = f.onlyStick(purpose)
	} else {
		s, err = f.stick(purpose, device)
	}
	if err == nil {
		return f.start(dbusapi.Job{Kind: kind, Device: s.Device, Backup: backup}, func(ctx context.Context, id string) dbusapi.Result {
			return run(ctx, id, s)
		})
	}
	if !dbusapi.IsKind(err, dbusapi.NotFound) || device != "" {
		return "", err
	}
	f.mu.Lock()
	after, held, bound := f.plugAfter, f.held != nil, f.plugWait
	f.mu.Unlock()
	wait = f.loc.Tr(wait)
	waiting := dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: wait, Text: wait, Cancellable: true, WaitingForStick: true}
	return f.startAt(dbusapi.Job{Kind: kind}, waiting, func(ctx context.Context, id string) dbusapi.Result {
		var plug <-chan time.Time
		if held {
			t := time.NewTimer(after)
			defer t.Stop()
			plug = t.C
		}
		timeout := time.NewTimer(bound)
		defer timeout.Stop()
		select {
		case <-plug:
		case <-ctx.Done():
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr(PlugCancelled)}
		case <-timeout.C:
			return dbusapi.Result{Result: dbusapi.ResultFailed, Text: f.loc.Tr("No stick was plugged in within %s, so nothing was changed: plug it in, then try again.",
				f.loc.TrN("%d minute", "%d minutes", int(bound/time.Minute), int(bound/time.Minute)))}
		}
		f.plugIn()
		s, err := f.onlyStick(purpose)
		if err != nil {
			return dbusapi.Result{Result: dbusapi.ResultFailed, Text: err.(*dbusapi.Error).Text}
		}
		f.mu.Lock()
		if f.job != nil && f.job.info.ID == id {
			f.job.info.Device, f.job.info.Backup = s.Device, backup
		}
		f.mu.Unlock()
		f.Events.Changed()
		return run(ctx, id, s)
	})
}

// Pair implements dbusapi.Backend.
func (f *Fake) Pair(ctx context.Context, device string) (string, error) {
	return f.startStick(dbusapi.PurposePair, dbusapi.KindPair, device, "", PlugPairText, func(ctx context.Context, id string, s dbusapi.StickInfo) dbusapi.Result {
		f.progress(id, dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: f.loc.Tr("Unlocking the stick."), Cancellable: true})
		if !f.pause(ctx) {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. The stick is not paired.")}
		}
		f.addBackup(NewBackupUUID, s)
		return dbusapi.Result{Text: f.loc.Tr("The stick is now your backup Tails. Update it now, or plug it in later."), Backup: NewBackupUUID}
	})
}

// Restore implements dbusapi.Backend.
func (f *Fake) Restore(ctx context.Context, device string) (string, error) {
	return f.startStick(dbusapi.PurposeRestore, dbusapi.KindRestore, device, BackupUUID, PlugRestoreText, func(ctx context.Context, id string, _ dbusapi.StickInfo) dbusapi.Result {
		choice, err := f.questions.Ask(ctx, id, dbusapi.Question{
			ID:    QuestionRestore,
			Title: f.loc.Tr("Replace your Persistent Storage?"),
			Body: f.loc.TrN("Restoring replaces the files of your Persistent Storage with those of the backup: %d file that is only here will be deleted.",
				"Restoring replaces the files of your Persistent Storage with those of the backup: %d files that are only here will be deleted.", 12, 12),
			Choices: []dbusapi.Choice{
				{ID: ChoiceCancel, Label: f.loc.Tr("Cancel")},
				{ID: ChoiceRestore, Label: f.loc.TrN("Restore and delete %d file", "Restore and delete %d files", 12, 12)},
			},
			Destructive: ChoiceRestore,
		})
		if err != nil || choice != ChoiceRestore {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. Nothing was changed.")}
		}
		if !f.copySteps(ctx, id, f.loc.Tr("Restoring your Persistent Storage."), 3.4) {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. Restore again to finish: your Persistent Storage is partly restored.")}
		}
		return dbusapi.Result{Text: f.loc.Tr("Your Persistent Storage is restored. Restart Tails to use it.")}
	})
}

// Verify implements dbusapi.Backend.
func (f *Fake) Verify(ctx context.Context, device string) (string, error) {
	return f.startStick(dbusapi.PurposeVerify, dbusapi.KindVerify, device, BackupUUID, PlugVerifyText, func(ctx context.Context, id string, _ dbusapi.StickInfo) dbusapi.Result {
		if !f.copySteps(ctx, id, f.loc.Tr("Comparing your backup with this Tails."), 3.4) {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. Nothing was changed.")}
		}
		return dbusapi.Result{
			Result: dbusapi.ResultFailed,
			Text: f.loc.TrN("Your backup differs from this Tails in %d place: update it to bring it up to date.",
				"Your backup differs from this Tails in %d places: update it to bring it up to date.", 2, 2),
			Differences: []dbusapi.Difference{
				{Path: "Persistent/notes.txt", Change: "changed", Text: f.loc.Tr("Changed here since the last update.")},
				{Path: "Persistent/photos/new.jpg", Change: "missing", Text: f.loc.Tr("Only on this Tails: not backed up yet.")},
			},
			Checks: []dbusapi.Check{
				{Name: f.loc.Tr("Tails system"), OK: true, Text: f.loc.Tr("The Tails system of the backup is intact.")},
				{Name: f.loc.Tr("Boot loader"), OK: true, Text: f.loc.Tr("The backup can start a computer.")},
			},
		}
	})
}

// Promote implements dbusapi.Backend.
func (f *Fake) Promote(ctx context.Context) (string, error) {
	f.mu.Lock()
	isBackup := f.status.IsBackup
	f.mu.Unlock()
	if !isBackup {
		return "", &dbusapi.Error{Kind: dbusapi.Refused, Text: f.loc.Tr("This Tails is already your main Tails: there is nothing to promote.")}
	}
	return f.start(dbusapi.Job{Kind: dbusapi.KindPromote}, func(ctx context.Context, id string) dbusapi.Result {
		if !f.pause(ctx) {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. This Tails is still a backup.")}
		}
		f.mu.Lock()
		f.status.IsBackup = false
		f.status.RemindersEnabled = true
		f.status.ReminderText = f.loc.Tr("No reminder until you have a backup Tails.")
		f.mu.Unlock()
		return dbusapi.Result{Text: f.loc.Tr("This Tails is now your main Tails. Create a new backup Tails for it.")}
	})
}

// backup finds the paired backup uuid: NotFound when it is not paired.
func (f *Fake) backup(uuid string) (dbusapi.Backup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.status.Backups {
		if b.UUID == uuid {
			return b, nil
		}
	}
	return dbusapi.Backup{}, &dbusapi.Error{Kind: dbusapi.NotFound, Text: f.loc.Tr("This backup is not paired with this Tails any more: look at the list of your backups again.")}
}

// changeBackup changes the paired backup uuid, and says so.
func (f *Fake) changeBackup(uuid string, change func(b *dbusapi.Backup)) {
	f.mu.Lock()
	for i := range f.status.Backups {
		if f.status.Backups[i].UUID == uuid {
			change(&f.status.Backups[i])
		}
	}
	f.mu.Unlock()
	f.Events.Changed()
}

// Forget implements dbusapi.Backend: it asks its confirmation, as the agent does, then the
// backup is no longer paired (and no longer listed as this Tails' backup).
func (f *Fake) Forget(ctx context.Context, backup string) (string, error) {
	b, err := f.backup(backup)
	if err != nil {
		return "", err
	}
	name := f.loc.Tr("the backup Tails %s", b.Name)
	return f.start(dbusapi.Job{Kind: dbusapi.KindForget, Backup: b.UUID, Device: b.Device}, func(ctx context.Context, id string) dbusapi.Result {
		choice, err := f.questions.Ask(ctx, id, dbusapi.Question{
			ID:    QuestionForget,
			Title: f.loc.Tr("Forget this backup?"),
			Body: f.loc.Tr("Forget %s? It will no longer be updated; the key that updates it without its passphrase, "+
				"and that key's slot on the stick, are removed. What the backup holds stays on it.", name),
			Choices:     []dbusapi.Choice{{ID: ChoiceCancel, Label: f.loc.Tr("Cancel")}, {ID: ChoiceForget, Label: f.loc.Tr("Forget")}},
			Destructive: ChoiceForget,
		})
		if err != nil || choice != ChoiceForget {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Not confirmed, so nothing was changed.")}
		}
		if !f.pause(ctx) {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. Nothing was changed.")}
		}
		f.mu.Lock()
		f.status.Backups = slices.DeleteFunc(f.status.Backups, func(x dbusapi.Backup) bool { return x.UUID == b.UUID })
		if len(f.status.Backups) == 0 {
			f.status.NextReminder, f.status.ReminderText = time.Time{}, f.loc.Tr("No reminder until you have a backup Tails.")
		}
		for purpose, sticks := range f.sticks {
			for i, s := range sticks {
				if s.Device == b.Device && s.BackupOfThis {
					s.Paired, s.BackupOfThis, s.Usable, s.Reason = false, false, purpose == dbusapi.PurposePair || purpose == dbusapi.PurposeRestore, ""
					if !s.Usable {
						s.Reason = f.loc.Tr("This stick is not paired as your backup Tails: pair it first, or choose your backup Tails.")
					}
					sticks[i] = s
				}
			}
		}
		f.mu.Unlock()
		f.Events.Changed()
		return dbusapi.Result{Text: appSentence(f.loc.Tr("%s is forgotten: it is no longer updated, and no key for it is kept in this Tails.", name))}
	})
}

// SetPassphraseFree implements dbusapi.Backend: turned on, the passphrase is asked (the fake
// takes a step for it); turned off, the key slot is removed. The job waits for the backup when
// it is not plugged in, as the agent's.
func (f *Fake) SetPassphraseFree(ctx context.Context, backup string, enabled bool) (string, error) {
	b, err := f.backup(backup)
	if err != nil {
		return "", err
	}
	return f.startStick(dbusapi.PurposeVerify, dbusapi.KindPassphraseFree, "", b.UUID, PlugPassphraseFreeText, func(ctx context.Context, id string, s dbusapi.StickInfo) dbusapi.Result {
		step := f.loc.Tr("Removing the key that updates your backup without its passphrase.")
		if enabled {
			step = f.loc.Tr("Adding the key that updates your backup without its passphrase.")
		}
		f.progress(id, dbusapi.Progress{Fraction: -1, SecondsLeft: -1, Step: step, Text: step, Cancellable: true})
		if !f.pause(ctx) {
			return dbusapi.Result{Result: dbusapi.ResultCancelled, Text: f.loc.Tr("Cancelled. Nothing was changed.")}
		}
		f.changeBackup(b.UUID, func(x *dbusapi.Backup) { x.PassphraseFree, x.PassphraseFreeNext = enabled, false })
		text := f.loc.Tr("Updates will not ask for the passphrase: a key kept in this Tails' Persistent Storage opens the backup.")
		if !enabled {
			text = appSentence(f.loc.Tr("Updates of %s will ask for its passphrase: its key slot is removed and the key kept in this Tails is shredded.", s.Name))
		}
		return dbusapi.Result{Text: text + " " + f.loc.Tr("You can unplug your backup Tails: it is updated the next time you plug it in.")}
	})
}

// appSentence gives s a capital first letter, as the agent shows the flows' sentences.
func appSentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// Cancel implements dbusapi.Backend.
func (f *Fake) Cancel(ctx context.Context, job string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.job == nil || f.job.info.ID != job {
		return &dbusapi.Error{Kind: dbusapi.NotFound, Text: f.loc.Tr("That task is not running any more: it has already finished.")}
	}
	f.job.cancel()
	return nil
}

// Answer implements dbusapi.Backend.
func (f *Fake) Answer(ctx context.Context, job, question, choice string) error {
	return f.questions.Answer(job, question, choice)
}

// SetReminders implements dbusapi.Backend.
func (f *Fake) SetReminders(ctx context.Context, enabled bool, periodDays uint32) error {
	f.mu.Lock()
	f.status.RemindersEnabled = enabled
	if periodDays != 0 {
		f.status.ReminderPeriodDays = periodDays
	}
	if !enabled {
		f.status.ReminderText = f.loc.Tr("No reminder: reminders are off.")
	} else {
		days := int(f.status.ReminderPeriodDays)
		f.status.ReminderText = f.loc.TrN("Reminders come when your backup is more than %d day old.", "Reminders come when your backup is more than %d days old.", days, days)
	}
	f.mu.Unlock()
	f.Events.Changed()
	return nil
}

// Snooze implements dbusapi.Backend.
func (f *Fake) Snooze(ctx context.Context) error {
	f.mu.Lock()
	f.status.SnoozedUntil = f.now().Add(24 * time.Hour).Truncate(time.Second)
	f.status.ReminderText = f.loc.Tr("No reminder until tomorrow.")
	f.mu.Unlock()
	f.Events.Changed()
	return nil
}
