package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"tails-backup/l10n"
	"tails-backup/l10n/l10ntest"
)

// runIn runs the command line as main does, in the language the environment vars choose
// among the catalogs in dir.
func runIn(t *testing.T, vars map[string]string, dir string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &environment{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, session: sessionFor(t),
		loc: l10n.FromEnv(func(k string) string { return vars[k] }, dir)}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := run(ctx, env, args)
	t.Logf("%v %q: exit %d\nstdout:\n%s\nstderr:\n%s", vars, args, code, out.String(), errb.String())
	return code, out.String(), errb.String()
}

// TestStatusInTheSessionLanguage: `LANGUAGE=fr tails-backup status` speaks French with the
// catalogs installed and English without them; Tails' LANG=ar_EG.UTF-8 gives Arabic.
func TestStatusInTheSessionLanguage(t *testing.T) {
	catalogs := l10ntest.Catalogs(t, "fr", "ar")
	_, dir := testSession(t)
	state := filepath.Join(dir, "state.json")
	saveState(t, state, statusState())
	for _, tt := range []struct {
		name    string
		vars    map[string]string
		dir     string
		want    []string
		notWant []string
	}{
		{"French", map[string]string{"LANGUAGE": "fr"}, catalogs, []string{
			"C'est votre Tails principal.\n",
			"Tails de sauvegarde associés à ce Tails : 2\n",
			"  Kingston DataTraveler, 17,2 Go\n",
			"    Associée :            mar. 18 févr. 2025 à 12:00\n",
			"    Mise à jour :         sam. 1 mars 2025 à 12:00 (il y a 9 jours)\n",
			"    Dernière tentative :  dim. 9 mars 2025 à 12:00, échouée : The passphrase was wrong three times.\n",
			"Rappels : activés, quand votre sauvegarde a plus de 7 jours (au plus un par jour). Reportés jusqu'au mar. 11 mars 2025 à 10:00.\n",
			"Prochain rappel : lun. 17 mars 2025 à 10:00 (dans environ 7 jours), sauf si votre sauvegarde est mise à jour avant.\n",
			"Magasin d'associations : ",
		}, []string{"This is your main Tails", "Reminders"}},
		{"French without catalogs is English", map[string]string{"LANGUAGE": "fr"}, filepath.Join(dir, "no-locale"), []string{
			"This is your main Tails.\n",
			"  Kingston DataTraveler, 17.2 GB\n",
			"    Last update:        Sat 1 Mar 2025 12:00 (9 days ago)\n",
		}, []string{"Tails principal"}},
		{"Arabic as Tails sets it", map[string]string{"LANG": "ar_EG.UTF-8", "LANGUAGE": "ar_EG"}, catalogs, []string{
			"هذا هو Tails الرئيسي.\n",
			// The values inserted in the Arabic sentences are isolated (l10n.Isolate), so
			// that the Latin ones read left to right.
			"  \u2068Kingston DataTraveler\u2069، \u206817٫2\u00a0غ.ب\u2069\n",
			"    آخر تحديث:          \u2068السبت 1 مارس 2025، 12:00\u2069 (منذ \u20689 أيام\u2069)\n",
		}, []string{"This is your main Tails"}},
		{"C locale is English", map[string]string{"LC_ALL": "C", "LANGUAGE": "fr"}, catalogs, []string{
			"This is your main Tails.\n",
		}, []string{"Tails principal"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, _ := runIn(t, tt.vars, tt.dir, "status", "--state", state)
			if code != 0 {
				t.Fatalf("exit %d", code)
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("the output lacks %q", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(stdout, w) {
					t.Errorf("the output has %q", w)
				}
			}
		})
	}
}

// TestUsageInTheSessionLanguage: the help and a usage error are French too.
func TestUsageInTheSessionLanguage(t *testing.T) {
	catalogs := l10ntest.Catalogs(t, "fr")
	testSession(t)
	fr := map[string]string{"LANG": "fr_FR.UTF-8"}
	code, _, stderr := runIn(t, fr, catalogs, "status", "extra")
	if code != 2 || stderr != "tails-backup status: status ne prend pas d'arguments\nlancez 'tails-backup status --help' pour voir comment l'utiliser\n" {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	code, stdout, _ := runIn(t, fr, catalogs, "status", "--help")
	for _, w := range []string{"usage : tails-backup status [--json] [--state FILE]\n", "Montrer les sauvegardes associées", "options :\n",
		"afficher la même chose sous forme de document JSON, pour les scripts"} {
		if code != 0 || !strings.Contains(stdout, w) {
			t.Errorf("exit %d, the help lacks %q", code, w)
		}
	}
	code, stdout, _ = runIn(t, fr, catalogs, "help")
	if code != 0 || !strings.Contains(stdout, "commandes :\n") || !strings.Contains(stdout, "montrer les sauvegardes associées, leur fraîcheur") {
		t.Errorf("exit %d, help:\n%s", code, stdout)
	}
}
