package session

import (
	"strings"
	"testing"

	"tails-backup/l10n"
	"tails-backup/l10n/l10ntest"
	"tails-backup/tails"
	"tails-backup/wire"
)

// fullArgs sets every value a sentence may use.
var fullArgs = wire.Args{Stick: &wire.Stick{Label: "SanDisk Cruzer", Size: 8_000_000_000, Device: "/dev/sdb"},
	Path: "/media/amnesia/TailsData", FSType: "vfat", Label: "NO NAME", UUID: "0123abcd-0000-4000-8000-000000000000",
	Op: "dance", Limit: wire.LimitDepth, Count: 64}

// TestEveryReasonIsWorded: each Reason of the wire has a sentence of its own, in English and in
// the catalogs, with its values filled in; a Reason added without one fails here. The helper's
// side (every failure names a Reason) is helper.TestEveryFailureHasAReason.
func TestEveryReasonIsWorded(t *testing.T) {
	catalogs := l10ntest.Catalogs(t, "fr", "ar")
	locs := map[string]*l10n.Locale{"en": nil, "fr": l10n.Load([]string{"fr"}, catalogs), "ar": l10n.Load([]string{"ar"}, catalogs)}
	seen := map[wire.Reason]bool{}
	for _, r := range wire.Reasons {
		if seen[r] {
			t.Errorf("%s is listed twice in wire.Reasons", r)
		}
		seen[r] = true
		if !KnownReason(r) {
			t.Errorf("reason %q has no sentence", r)
			continue
		}
		for lang, loc := range locs {
			for _, sizes := range [][2]int64{{0, 0}, {3_000_000_000, 1_000_000_000}} {
				he := &wire.HelperError{Code: wire.CodeRefused, Reason: r, Args: fullArgs, Message: "the English message", Needed: sizes[0], Available: sizes[1]}
				got := HelperText(loc, he)
				if got == "" || strings.Contains(got, "%!") || strings.Contains(got, "%[") || strings.Contains(got, "English") {
					t.Errorf("%s, %s: %q", lang, r, got)
				}
				if lang != "en" && got == HelperText(nil, he) {
					t.Errorf("%s, %s: not translated: %q", lang, r, got)
				}
			}
		}
	}
	if KnownReason("") || KnownReason("no-such-reason") {
		t.Error("an unknown reason is known")
	}
}

// TestHelperTextFrench: a few reasons and codes through the real French catalog, the stick named
// and the sizes written as in French, and an unknown reason worded from its code.
func TestHelperTextFrench(t *testing.T) {
	fr := l10n.Load([]string{"fr"}, l10ntest.Catalogs(t, "fr"))
	cruzer := &wire.Stick{Label: "SanDisk Cruzer", Size: 8_000_000_000, Device: "/dev/sdb"}
	for _, tt := range []struct {
		name string
		he   wire.HelperError
		want string
	}{
		{"locked", wire.HelperError{Code: wire.CodeNotFound, Reason: wire.ReasonBackupLocked, Args: wire.Args{Stick: cruzer}},
			"Le Stockage persistant de la sauvegarde sur SanDisk Cruzer (8,0 Go, /dev/sdb) est verrouillé. Déverrouillez-le et réessayez."},
		{"too small", wire.HelperError{Code: wire.CodeNoSpace, Reason: wire.ReasonBackupTooSmall, Args: wire.Args{Stick: cruzer}, Needed: 3_000_000_000, Available: 1_000_000_000},
			"La sauvegarde sur SanDisk Cruzer (8,0 Go, /dev/sdb) est trop petite : la mise à jour a besoin de 2,0 Go de plus que les 1,0 Go libres. Libérez de la place dans votre Stockage persistant, ou créez une nouvelle sauvegarde sur une clé USB plus grande avec 'tails-backup create'."},
		{"a stick with no name", wire.HelperError{Code: wire.CodeNotFound, Reason: wire.ReasonBackupLocked, Args: wire.Args{Stick: &wire.Stick{Size: 16_000_000_000}}},
			"Le Stockage persistant de la sauvegarde sur clé USB sans nom (16,0 Go) est verrouillé. Déverrouillez-le et réessayez."},
		{"a bound", wire.HelperError{Code: wire.CodeRefused, Reason: wire.ReasonSourceLimit, Args: wire.Args{Path: "Persistent/a/…/a", Limit: wire.LimitDepth, Count: 64}},
			"Votre Stockage persistant contient, à Persistent/a/…/a, plus que la sauvegarde ne peut copier, la mise à jour s'est donc arrêtée. Déplacez-le ou supprimez-le et relancez la mise à jour. Un dossier y est imbriqué sur plus de 64 niveaux."},
		{"an unknown reason", wire.HelperError{Code: wire.CodeDeviceGone, Reason: "from-a-newer-helper", Message: "The stick is gone."},
			"La clé USB a lâché ou a été débranchée. Rebranchez-la et réessayez."},
	} {
		if got := HelperText(fr, &tt.he); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
	// A problem found by verify, and one of a code this session does not know.
	for _, tt := range []struct {
		ev   wire.Event
		want string
	}{
		{wire.ProblemEvent(tails.Problem{Path: "persistence.conf", Code: tails.FindingConfMode, Args: tails.ProblemArgs{Mode: "0644"}, What: "English."}),
			"Son mode est 0644 au lieu d'exactement 0600, Tails le désactiverait donc et n'activerait aucune fonctionnalité."},
		{wire.Event{Phase: wire.PhaseProblem, Path: ".", Reason: "from-a-newer-helper", Problem: "English."},
			"Tails refuserait ou réparerait ceci au démarrage."},
	} {
		if got := FindingText(fr, tt.ev); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.ev.Reason, got, tt.want)
		}
	}
}
