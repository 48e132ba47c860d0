package gnomeshell

import (
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"tails-backup/internal/testtool"
	"tails-backup/pinentry"
)

// Pinentry is pinentry-gnome3 run in the session (Argv), which asks through the shell's own
// modal prompt, logging to log. pinentry inherits the test's environment, which gets the
// session's (Env: its bus and display) through t.Setenv: a test that uses it cannot run in
// parallel. GNOME Shell 43's is the host's program (installed by .ci/deps test).
func (s *Session) Pinentry(t testing.TB, log *logrus.Entry) *pinentry.Pinentry {
	t.Helper()
	if s.shell == Host43 {
		testtool.Program(t, "pinentry-gnome3", "pinentry-gnome3")
	}
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
	for _, kv := range s.langEnv() { // pinentry-gnome3's own texts, in the session's language
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	p := pinentry.NewPinentry(log)
	argv := s.Argv("/usr/bin/pinentry-gnome3")
	p.Program, p.Args = argv[0], argv[1:]
	return p
}
