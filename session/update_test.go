package session

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/inhibit/inhibittest"
	"tails-backup/internal/dmcrypt"
	"tails-backup/pairing"
	"tails-backup/pinentry/pinentrytest"
	"tails-backup/quiesce"
	"tails-backup/quiesce/quiescetest"
	"tails-backup/tails"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
	"tails-backup/wire/wiretest"
)

// fakeObserver answers the questions about applications in order (cancelling once they run
// out) and records what the person would have seen.
type fakeObserver struct {
	mu        sync.Mutex
	answers   []AppAnswer
	questions []AppQuestion
	copying   int
	progress  []UpdateProgress
	// refreshing are the versions of each RefreshingSystem, "from>to"; system the progress of
	// the system refresh.
	refreshing []string
	system     []UpdateProgress
}

func (o *fakeObserver) RefreshingSystem(from, to string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refreshing = append(o.refreshing, from+">"+to)
}

func (o *fakeObserver) SystemProgress(p UpdateProgress) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.system = append(o.system, p)
}

func (o *fakeObserver) AskApp(ctx context.Context, q AppQuestion) (AppAnswer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.questions = append(o.questions, q)
	if len(o.answers) == 0 {
		return AppCancel, nil
	}
	a := o.answers[0]
	o.answers = o.answers[1:]
	return a, nil
}

func (o *fakeObserver) Copying() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.copying++
}

func (o *fakeObserver) Progress(p UpdateProgress) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.progress = append(o.progress, p)
}

var (
	thunderbird = quiesce.BusyApp{App: tails.App{Name: "Thunderbird"}, Feature: tails.Feature{Name: "Thunderbird Email Client", Source: "thunderbird"}, PIDs: []int{42}, Closable: true}
	synaptic    = quiesce.BusyApp{App: tails.App{Name: "Synaptic", System: true}, Feature: tails.Feature{Name: "Additional Software", Source: "apt/cache"}, PIDs: []int{7}}
)

func TestUpdate(t *testing.T) {
	right := pinentrytest.FakeAnswer{Pass: udiskstest.BackupPassphrase}
	wrong := pinentrytest.FakeAnswer{Pass: "wrong"}
	ours := func(string) (tails.Marker, error) { return tails.Marker{Source: bootUUID}, nil }
	ejected := []string{"Unlock", "Mount", "Unmount", "Lock", "PowerOff"}
	report := &wire.Report{Created: 2, Updated: 1, Deleted: 1, BytesCopied: 5000}
	noSpace := &wire.HelperError{Code: wire.CodeNoSpace, Message: "The backup is too small.", Needed: 10, Available: 5}
	type ctl struct {
		u      *Update
		cancel context.CancelCauseFunc
	}
	waitCancel := func(c ctl) func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
		return func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
			<-ctx.Done()
			return nil, &wire.HelperError{Code: wire.CodeCancelled, Message: "cancelled"}
		}
	}
	for _, tc := range []struct {
		name        string
		spec        udiskstest.StickSpec
		passes      []pinentrytest.FakeAnswer // nil: the right one
		marker      func(string) (tails.Marker, error)
		small       bool
		busy        []quiesce.BusyApp
		stubborn    bool
		apps        []AppAnswer
		helperErr   error
		helper      func(c ctl) func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error)
		pausedBy    string // a pause of the updates held by it
		owner       string // the update's own PauseOwner
		keepPlugged bool

		kind      FailureKind // when err
		err       bool
		result    pairing.Result
		calls     []string // udisks calls by the end
		skip      []string // sent to the helper; nil with no helper run
		helperRun bool
		questions []AppQuestion
		skipped   []string
		marker2   MarkerProblem
	}{
		{name: "success", calls: ejected, helperRun: true, result: pairing.ResultSuccess},
		{name: "no valid marker", marker: func(string) (tails.Marker, error) { return tails.Marker{}, errors.New("no marker") },
			err: true, kind: FailMarker, marker2: MarkerInvalid, result: pairing.ResultFailed, calls: ejected},
		{name: "the backup of another Tails", marker: func(string) (tails.Marker, error) { return tails.Marker{Source: "other"}, nil },
			err: true, kind: FailMarker, marker2: MarkerOtherTails, result: pairing.ResultFailed, calls: ejected},
		{name: "too small", small: true, err: true, kind: FailTooSmall, result: pairing.ResultFailed, calls: ejected},
		{name: "an application closed", busy: []quiesce.BusyApp{thunderbird}, apps: []AppAnswer{AppAgain},
			questions: []AppQuestion{{App: "Thunderbird", Feature: "Thunderbird Email Client", Closable: true}},
			helperRun: true, result: pairing.ResultSuccess, calls: ejected},
		{name: "an application's data skipped", busy: []quiesce.BusyApp{thunderbird}, apps: []AppAnswer{AppLeave},
			questions: []AppQuestion{{App: "Thunderbird", Feature: "Thunderbird Email Client", Closable: true}},
			helperRun: true, skip: []string{"thunderbird"}, skipped: []string{"Thunderbird Email Client"}, result: pairing.ResultSuccess, calls: ejected},
		{name: "an application that does not close, then skipped", busy: []quiesce.BusyApp{thunderbird}, stubborn: true, apps: []AppAnswer{AppAgain, AppLeave},
			questions: []AppQuestion{{App: "Thunderbird", Feature: "Thunderbird Email Client", Closable: true},
				{App: "Thunderbird", Feature: "Thunderbird Email Client", Closable: true, StillRunning: true}},
			helperRun: true, skip: []string{"thunderbird"}, skipped: []string{"Thunderbird Email Client"}, result: pairing.ResultSuccess, calls: ejected},
		{name: "the package manager: try again, then skip", busy: []quiesce.BusyApp{synaptic}, apps: []AppAnswer{AppAgain, AppLeave},
			questions: []AppQuestion{{App: "Synaptic", Feature: "Additional Software"}, {App: "Synaptic", Feature: "Additional Software"}},
			helperRun: true, skip: []string{"apt"}, skipped: []string{"Additional Software"}, result: pairing.ResultSuccess, calls: ejected},
		{name: "cancelled at an application", busy: []quiesce.BusyApp{thunderbird}, apps: []AppAnswer{AppCancel},
			questions: []AppQuestion{{App: "Thunderbird", Feature: "Thunderbird Email Client", Closable: true}},
			err:       true, kind: FailCancelled, result: pairing.ResultCancelled, calls: ejected},
		{name: "no space", helperErr: noSpace, helperRun: true, err: true, kind: FailHelper, result: pairing.ResultIncomplete, calls: ejected},
		{name: "the helper crashed", helperErr: &wire.HelperCrashError{}, helperRun: true, err: true, kind: FailHelper, result: pairing.ResultIncomplete, calls: ejected},
		{name: "the helper saw the device go", helperErr: &wire.HelperError{Code: wire.CodeDeviceGone, Message: "gone"}, helperRun: true,
			err: true, kind: FailUnplugged, result: pairing.ResultIncomplete, calls: []string{"Unlock", "Mount"}},
		{name: "stick pulled during the copy", helperRun: true, helper: func(c ctl) func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
			return func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				c.u.StickGone()
				return waitCancel(c)(ctx, req, progress)
			}
		}, err: true, kind: FailUnplugged, result: pairing.ResultIncomplete, calls: []string{"Unlock", "Mount"}},
		{name: "cancelled by the person during the copy", helperRun: true, helper: func(c ctl) func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
			return func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				c.cancel(ErrCancelled)
				return waitCancel(c)(ctx, req, progress)
			}
		}, err: true, kind: FailCancelled, result: pairing.ResultIncomplete, calls: ejected},
		{name: "stopped (not by the person) during the copy", helperRun: true, helper: func(c ctl) func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
			return func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				c.cancel(nil)
				return waitCancel(c)(ctx, req, progress)
			}
		}, err: true, kind: FailHelper, result: pairing.ResultIncomplete, calls: ejected},
		{name: "no passphrase given", passes: []pinentrytest.FakeAnswer{}, err: true, kind: FailCancelled, result: pairing.ResultCancelled,
			calls: []string{"PowerOff"}},
		{name: "three wrong passphrases", passes: []pinentrytest.FakeAnswer{wrong, wrong, wrong}, err: true, kind: FailTooManyTries,
			result: pairing.ResultFailed, calls: []string{"Unlock", "Unlock", "Unlock", "PowerOff"}},
		{name: "three wrong passphrases, for a command: not powered off", passes: []pinentrytest.FakeAnswer{wrong, wrong, wrong}, keepPlugged: true,
			err: true, kind: FailTooManyTries, result: pairing.ResultFailed, calls: []string{"Unlock", "Unlock", "Unlock"}},
		{name: "a helper failure, for a command: locked, not powered off", helperErr: noSpace, keepPlugged: true, helperRun: true,
			err: true, kind: FailHelper, result: pairing.ResultIncomplete, calls: []string{"Unlock", "Mount", "Unmount", "Lock"}},
		{name: "paused by a restore: the stick is left to it", pausedBy: "restore 1", err: true, kind: FailPaused,
			result: pairing.ResultCancelled, calls: []string{"Unlock", "Mount"}},
		{name: "its own pause does not stop it", pausedBy: "update 2", owner: "update 2", helperRun: true, result: pairing.ResultSuccess, calls: ejected},
		{name: "found open, refused: left as found", spec: udiskstest.StickSpec{Unlocked: true}, keepPlugged: true,
			helperErr: &wire.HelperError{Code: wire.CodeRefused, Message: "Another update is running; wait for it to finish."},
			helperRun: true, err: true, kind: FailHelper, result: pairing.ResultIncomplete, calls: []string{"Mount"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, disks, st := openWorld(t, tc.spec)
			passes := tc.passes
			if passes == nil {
				passes = []pinentrytest.FakeAnswer{right}
			}
			marker := tc.marker
			if marker == nil {
				marker = ours
			}
			now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			log := logrus.NewEntry(logrus.New())
			log.Logger.SetLevel(logrus.PanicLevel)
			store := pairing.NewStore(filepath.Join(t.TempDir(), "state.json"), func() time.Time { return now }, log)
			if tc.pausedBy != "" {
				if _, err := store.Update(context.Background(), func(s *pairing.State) error { s.Pause(tc.pausedBy, now.Add(time.Hour), now); return nil }); err != nil {
					t.Fatal(err)
				}
			}
			q := &quiescetest.FakeQuiescer{Features: []tails.Feature{thunderbird.Feature, synaptic.Feature}, Busy: tc.busy}
			if tc.stubborn {
				q.Stubborn = map[string]bool{"Thunderbird": true}
			}
			obs := &fakeObserver{answers: tc.apps}
			helper := &wiretest.FakeHelper{Report: report, Err: tc.helperErr,
				Progress: []wire.Event{{Phase: "scan"}, {Phase: "copy", BytesDone: 500, BytesTotal: 1000}}}
			inh := &inhibittest.FakeInhibitor{}
			u := &Update{Disks: disks, Asker: &pinentrytest.FakeAsker{Answers: passes}, Quiescer: q, Inhibitor: inh, Helper: helper,
				Store: store, Now: func() time.Time { return now }, Log: log, Stick: st, Source: bootUUID, Persistence: t.TempDir(),
				ReadMarker: marker, QuiesceGrace: time.Millisecond, PauseOwner: tc.owner, KeepPlugged: tc.keepPlugged, Observer: obs}
			if tc.small {
				u.statfs = func(path string, s *unix.Statfs_t) error {
					s.Bsize, s.Blocks, s.Bfree = 4096, 1000, 0
					if path != u.Persistence {
						s.Blocks = 10
					}
					return nil
				}
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tc.helper != nil {
				helper.Func = tc.helper(ctl{u: u, cancel: cancel})
			}

			done, err := u.Run(ctx)
			if tc.err {
				var e *UpdateError
				if !errors.As(err, &e) {
					t.Fatalf("Run = %v, %v; want an *UpdateError", done, err)
				}
				if e.Kind != tc.kind || e.Result() != tc.result {
					t.Errorf("failure %d (%v), result %s; want %d, %s", e.Kind, e.Err, e.Result(), tc.kind, tc.result)
				}
				if tc.kind == FailMarker && e.Marker != tc.marker2 {
					t.Errorf("marker problem %d, want %d", e.Marker, tc.marker2)
				}
				if tc.kind == FailTooSmall && (e.Need != 4096*1000 || e.Have != 4096*10) {
					t.Errorf("too small: need %d, have %d", e.Need, e.Have)
				}
				if e.Started != tc.helperRun {
					t.Errorf("started %v, want %v", e.Started, tc.helperRun)
				}
			} else {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if done.Changed != 4 || !done.Ejected || done.MessageIn(nil) != "" || !slices.Equal(done.Skipped, tc.skipped) {
					t.Errorf("done %+v", done)
				}
				if obs.copying != 1 || len(obs.progress) != 2 || obs.progress[1].Percent != 50 || obs.progress[0].Percent != 0 {
					t.Errorf("copying %d, progress %+v", obs.copying, obs.progress)
				}
				if got := inh.Whys(); !slices.Equal(got, []string{"Updating your backup Tails"}) || inh.Active() != 0 {
					t.Errorf("inhibitor: %q, %d still held", got, inh.Active())
				}
			}
			reqs := helper.Requests()
			if (len(reqs) == 1) != tc.helperRun {
				t.Fatalf("helper requests %+v, want run %v", reqs, tc.helperRun)
			}
			if tc.helperRun && (reqs[0].Op != wire.OpUpdate || reqs[0].Backup != backupUUID || !slices.Equal(reqs[0].Skip, tc.skip)) {
				t.Errorf("request %+v, want an update of %s skipping %q", reqs[0], backupUUID, tc.skip)
			}
			if !slices.EqualFunc(obs.questions, tc.questions, func(a, b AppQuestion) bool { return a == b }) {
				t.Errorf("questions %+v, want %+v", obs.questions, tc.questions)
			}
			if got := methods(fake); !slices.Equal(got, tc.calls) {
				t.Errorf("udisks calls %q, want %q", got, tc.calls)
			}
		})
	}
}

// TestUpdateClearsWhatAPullLeft: before it unlocks the backup, the update asks the root helper
// (lock-backup) to remove a crypt mapping of the backup's LUKS UUID whose stick is gone (what
// udisks could not remove after a pull), then unlocks it as usual; with no such mapping, or
// one whose stick is there, it asks nothing; a failed removal is not fatal.
func TestUpdateClearsWhatAPullLeft(t *testing.T) {
	stale := dmcrypt.Mapping{Name: "luks-" + backupUUID, Device: "/dev/dm-7", Major: 254, Minor: 7, Stale: true}
	live := stale
	live.Stale = false
	for _, tc := range []struct {
		name      string
		maps      []dmcrypt.Mapping
		listErr   error
		removeErr error
		// asCleartext: udisks shows the stick unlocked, the mapping left by the pull as its
		// cleartext device: once removed, the update unlocks it again.
		asCleartext bool
		want        []wire.Op
	}{
		{name: "left by a pull", maps: []dmcrypt.Mapping{stale}, want: []wire.Op{wire.OpLockBackup, wire.OpUpdate}},
		{name: "left by a pull, shown as the stick's cleartext", maps: []dmcrypt.Mapping{stale}, asCleartext: true, want: []wire.Op{wire.OpLockBackup, wire.OpUpdate}},
		{name: "the removal fails", maps: []dmcrypt.Mapping{stale}, removeErr: errors.New("sudo failed"), want: []wire.Op{wire.OpLockBackup, wire.OpUpdate}},
		{name: "its stick is there", maps: []dmcrypt.Mapping{live}, want: []wire.Op{wire.OpUpdate}},
		{name: "none", want: []wire.Op{wire.OpUpdate}},
		{name: "sysfs unreadable", listErr: errors.New("no sysfs"), want: []wire.Op{wire.OpUpdate}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake, disks, st := openWorld(t, udiskstest.StickSpec{Unlocked: tc.asCleartext})
			maps := tc.maps
			if tc.asCleartext {
				maps = []dmcrypt.Mapping{stale}
				maps[0].Device = st.Cleartext.Block.Device
			}
			now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
			log := logrus.NewEntry(logrus.New())
			log.Logger.SetLevel(logrus.PanicLevel)
			store := pairing.NewStore(filepath.Join(t.TempDir(), "state.json"), func() time.Time { return now }, log)
			helper := &wiretest.FakeHelper{Func: func(ctx context.Context, req wire.Request, progress func(wire.Event)) (*wire.Report, error) {
				if req.Op == wire.OpLockBackup {
					return &wire.Report{}, tc.removeErr
				}
				return &wire.Report{Created: 1}, nil
			}}
			u := &Update{Disks: disks, Asker: &pinentrytest.FakeAsker{Answers: []pinentrytest.FakeAnswer{{Pass: udiskstest.BackupPassphrase}}},
				Quiescer: &quiescetest.FakeQuiescer{}, Inhibitor: &inhibittest.FakeInhibitor{}, Helper: helper,
				Store: store, Now: func() time.Time { return now }, Log: log, Stick: st, Source: bootUUID, Persistence: t.TempDir(),
				ReadMarker: func(string) (tails.Marker, error) { return tails.Marker{Source: bootUUID}, nil }, QuiesceGrace: time.Millisecond,
				Observer: &fakeObserver{}}
			var asked []string
			u.mappings = func(uuid string) ([]dmcrypt.Mapping, error) {
				asked = append(asked, uuid)
				return maps, tc.listErr
			}
			if _, err := u.Run(context.Background()); err != nil {
				t.Fatalf("Run: %v", err)
			}
			var ops []wire.Op
			for _, r := range helper.Requests() {
				ops = append(ops, r.Op)
				if r.Backup != backupUUID {
					t.Errorf("request %+v, want one about %s", r, backupUUID)
				}
			}
			if !slices.Equal(ops, tc.want) {
				t.Errorf("helper requests %v, want %v", ops, tc.want)
			}
			if !slices.Equal(asked, []string{backupUUID}) {
				t.Errorf("mappings asked of %q, want of the backup's UUID alone", asked)
			}
			if got := methods(fake); !slices.Equal(got, []string{"Unlock", "Mount", "Unmount", "Lock", "PowerOff"}) {
				t.Errorf("udisks calls %q", got)
			}
		})
	}
}
