package app

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/internal/gnomeshell"
	"tails-backup/internal/gnomeshell/apptest"
	"tails-backup/l10n/l10ntest"
)

// screenshotsEnv names the folder where the journey writes its screenshots, relative to the
// repository's root (docs/screenshots renews the project's); they come from GNOME Shell 48, the
// desktop of Tails 7 (43's go to a temporary folder). Without it they all go to temporary
// folders.
const screenshotsEnv = "TAILS_BACKUP_SCREENSHOTS"

// fakeStep is how long each step of the fake agent's jobs takes: long enough for the journey to
// see the progress bar move and press Cancel before the job is over, on a busy machine too.
const fakeStep = "1500ms"

// TestJourney drives the Backup app through AT-SPI in the real GNOME Shell, 43 (Tails 6) and 48
// (Tails 7, in its Debian 13 root), against fakebackupd (the fake agent of dbusapi/dbusapitest,
// the one the dbusapi tests check against the API), in the light and the dark style
// (tests/journey.py): first run, create, paired, update now with the open application's
// question and Cancel, verify, restore's question; first run, pair a Tails stick, then a second
// start of the app with --page verify switching the window; a verify started with the backup not
// plugged in, which waits for it and goes on once it is; a backup's own page, its updates
// without the passphrase turned on, then "Forget this backup" and its confirmation; the promote
// page of a backup Tails,
// promoted. After each, the page saying that the agent is not running once it has stopped. Each
// step waits for what the window must show.
func TestJourney(t *testing.T) {
	if testing.Short() {
		t.Skip("starts GNOME Shell")
	}
	here, err := os.Getwd() // app/
	if err != nil {
		t.Fatal(err)
	}
	shots := os.Getenv(screenshotsEnv)
	if shots != "" && !filepath.IsAbs(shots) {
		shots = filepath.Join(filepath.Dir(here), shots)
	}
	fake := apptest.BuildStatic(t, filepath.Dir(here), "./dbusapi/dbusapitest/cmd/fakebackupd")
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			if shell == gnomeshell.Host43 {
				// The Debian 13 root has them by its package list (gnomeshell.Packages).
				apptest.RequirePython(t, "import gi; gi.require_version('Adw', '1'); from gi.repository import Adw; import pyatspi",
					"python3-gi gir1.2-adw-1 python3-pyatspi at-spi2-core")
			}
			dir := shots
			if dir == "" || shell != gnomeshell.Trixie48 {
				dir = t.TempDir()
			}
			journey(t, gnomeshell.Start(t, shell), here, fake, dir, "", schemes)
		})
	}
	// In Arabic, as Tails' Welcome Screen sets it, in GNOME Shell 48: the app and the fake agent
	// speak it from the project's catalog (TEXTDOMAINDIR), the window is laid out right to left,
	// and the journeys look for the translations of their texts. The pictures go to
	// docs/screenshots/ar; in the light style only (the dark one has the same layout).
	t.Run(gnomeshell.Trixie48.String()+"-Arabic", func(t *testing.T) {
		dir := t.TempDir()
		if shots != "" {
			dir = filepath.Join(shots, "ar")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		catalogs := l10ntest.Catalogs(t, "ar")
		journey(t, gnomeshell.StartIn(t, gnomeshell.Trixie48, "ar_EG"), here, fake, dir, catalogs, schemes[:1])
	})
}

// schemes are the styles the journeys run in: the name of TAILS_BACKUP_APP_COLOR_SCHEME and
// the suffix of the screenshots' names.
var schemes = []struct{ name, suffix string }{{"light", ""}, {"dark", "-dark"}}

// journey runs the journeys in session s, with the app of the folder app, the fake agent fake
// and the screenshots written to shots (host paths, shared with the session), in each of
// schemes. catalogs, when not "", is a folder of compiled catalogs (l10ntest.Catalogs) that
// the app, the fake agent and the journeys read, in the session's language.
func journey(t *testing.T, s *gnomeshell.Session, app, fake, shots, catalogs string, schemes []struct{ name, suffix string }) {
	var paths [4]string
	for i, p := range []string{app, fake, shots, catalogs} {
		if p == "" {
			continue
		}
		var err error
		if paths[i], err = s.Share(p); err != nil {
			t.Fatal(err)
		}
	}
	app, fake, shots = paths[0], paths[1], paths[2]
	conn, err := dbus.Connect(s.Address())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	env := []string{"GDK_BACKEND=wayland", "PYTHONDONTWRITEBYTECODE=1"}
	if paths[3] != "" {
		env = append(env, "TEXTDOMAINDIR="+paths[3])
	}
	for _, scheme := range schemes {
		t.Run(scheme.name, func(t *testing.T) {
			appEnv := slices.Concat(env, []string{"TAILS_BACKUP_APP_COLOR_SCHEME=" + scheme.name})
			for _, j := range []struct {
				scenario string
				args     []string // more arguments of fakebackupd
				journeys []string
			}{
				{"first-run", nil, []string{"first-run"}},
				{"first-run", nil, []string{"pair", "--page verify", "page-verify"}},
				{"plugged", []string{"-plug-after", "5s"}, []string{"verify-waiting"}},
				{"plugged", nil, []string{"backup-settings"}},
				{"backup", nil, []string{"promote"}},
			} {
				t.Run(j.journeys[0], func(t *testing.T) {
					args := slices.Concat([]string{"-scenario", j.scenario, "-step", fakeStep}, j.args)
					agent := apptest.Start(t, s.Command(fake, args, env...))
					apptest.WaitName(t, conn, "org.boum.tails.Backup1", agent)
					window := apptest.Start(t, s.Command(apptest.Python, []string{app + "/tails-backup-app"}, appEnv...))
					run := func(journey string) {
						t.Helper()
						if page, ok := strings.CutPrefix(journey, "--page "); ok {
							// A second start: it hands its command line to the app running and exits.
							cmd := s.Command(apptest.Python, []string{app + "/tails-backup-app", "--page", page}, appEnv...)
							if out, err := apptest.RunTimeout(cmd, 30*time.Second); err != nil {
								t.Fatalf("tails-backup-app --page %s: %v\n%s", page, err, out)
							}
							return
						}
						out, err := apptest.RunTimeout(s.Command(apptest.Python, []string{app + "/tests/journey.py", journey, shots, scheme.suffix}, env...), 5*time.Minute)
						if err != nil {
							t.Fatalf("journey %s: %v\n%s\napp:\n%s\nfake agent:\n%s", journey, err, out, window.Output(), agent.Output())
						}
						t.Logf("%s", out)
					}
					for _, journey := range j.journeys {
						run(journey)
					}
					// The agent stops: the window says so.
					agent.Stop()
					run("no-service")
					window.Stop()
				})
			}
		})
	}
}
