package session

import (
	"context"
	"testing"

	"tails-backup/pinentry/pinentrytest"
)

// TestAppTexts: a flow run for the Backup app (its App) says "try again" where the command
// says which command to run again, and names no option to type; the command's texts stay.
func TestAppTexts(t *testing.T) {
	name := "Kingston (/dev/sdb)"
	for _, tc := range []struct{ got, want string }{
		{UsePair.tooManyTries(nil, name, true), "the passphrase was wrong 3 times, so Kingston (/dev/sdb) was not paired; try again and type the passphrase of that stick's Persistent Storage"},
		{UseVerify.tooManyTries(nil, name, true), "the passphrase was wrong 3 times, so Kingston (/dev/sdb) was not verified; try again and type the passphrase of that stick's Persistent Storage"},
		{UsePassphraseFree.tooManyTries(nil, name, true), "the passphrase was wrong 3 times, so the updates of Kingston (/dev/sdb) still ask for it; try again and type the passphrase of that stick's Persistent Storage"},
		{UseRestore.tooManyTries(nil, name, false), "the passphrase was wrong 3 times, so Kingston (/dev/sdb) was not used; run 'tails-backup restore' again and type the passphrase of that stick's Persistent Storage"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
	empty := func() *pinentrytest.FakeAsker {
		return &pinentrytest.FakeAsker{Answers: []pinentrytest.FakeAnswer{{Pass: ""}, {Pass: ""}, {Pass: ""}}}
	}
	for _, tc := range []struct {
		name string
		ask  func(ctx context.Context) ([]byte, error)
		want string
	}{
		{"app", func(ctx context.Context) ([]byte, error) { return AskNewPassphraseApp(ctx, nil, empty(), name) },
			"the passphrase was empty 3 times, so nothing was changed; try again and type a passphrase"},
		{"command", func(ctx context.Context) ([]byte, error) { return AskNewPassphraseIn(ctx, nil, empty(), name) },
			"the passphrase was empty 3 times, so nothing was changed; run 'tails-backup create' again and type a passphrase"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pass, err := tc.ask(context.Background())
			if pass != nil || err == nil || err.Error() != tc.want {
				t.Errorf("got %q, %v; want %q", pass, err, tc.want)
			}
		})
	}
}
