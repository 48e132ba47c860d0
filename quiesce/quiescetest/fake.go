// Package quiescetest provides FakeQuiescer, a quiesce.Quiescer for tests.
package quiescetest

import (
	"context"
	"slices"
	"sync"
	"time"

	"tails-backup/quiesce"
	"tails-backup/tails"
)

// FakeQuiescer is a quiesce.Quiescer for tests. ActiveFeatures returns Features (or FeaturesErr);
// BusyApps returns the apps of Busy whose feature is among those asked and that were not
// closed; CloseApp closes an app, unless its name is in Stubborn (then quiesce.ErrStillRunning).
type FakeQuiescer struct {
	Features    []tails.Feature
	FeaturesErr error
	Busy        []quiesce.BusyApp
	Stubborn    map[string]bool

	mu     sync.Mutex
	closed []string
}

// ActiveFeatures implements quiesce.Quiescer.
func (f *FakeQuiescer) ActiveFeatures(ctx context.Context) ([]tails.Feature, error) {
	return f.Features, f.FeaturesErr
}

// BusyApps implements quiesce.Quiescer.
func (f *FakeQuiescer) BusyApps(ctx context.Context, features []tails.Feature) ([]quiesce.BusyApp, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []quiesce.BusyApp
	for _, b := range f.Busy {
		active := slices.ContainsFunc(features, func(ft tails.Feature) bool { return ft.Source == b.Feature.Source })
		if active && !slices.Contains(f.closed, b.App.Name) {
			out = append(out, b)
		}
	}
	return out, nil
}

// CloseApp implements quiesce.Quiescer.
func (f *FakeQuiescer) CloseApp(ctx context.Context, app quiesce.BusyApp, grace time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Stubborn[app.App.Name] {
		return &quiesce.StillRunningError{App: app.App, PIDs: app.PIDs}
	}
	f.closed = append(f.closed, app.App.Name)
	return nil
}

// Exit makes the app named name stop running, as if it had finished by itself.
func (f *FakeQuiescer) Exit(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, name)
}

// Closed returns the names of the apps closed, in order.
func (f *FakeQuiescer) Closed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.closed...)
}

var _ quiesce.Quiescer = (*FakeQuiescer)(nil)
