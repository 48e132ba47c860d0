package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tails-backup/internal/testtool"
	"tails-backup/l10n"
	"tails-backup/l10n/l10ntest"
)

// TestCompileCatalog: scenario 16's expected texts come from po/fr.po, compiled and loaded as
// the product loads its catalogs; a catalog msgfmt rejects is an error, not English.
func TestCompileCatalog(t *testing.T) {
	testtool.Program(t, "msgfmt", "gettext")
	ctx := context.Background()
	fr, err := compileCatalog(ctx, filepath.Join(l10ntest.PoDir(t), "fr.po"), t.TempDir(), "fr")
	if err != nil {
		t.Fatal(err)
	}
	if fr.Lang() != "fr" || fr.Tr(msgMainTails) == msgMainTails {
		t.Errorf("the compiled catalog is %q and translates %q as %q", fr.Lang(), msgMainTails, fr.Tr(msgMainTails))
	}
	if err := translated(fr, msgUpdating, msgUpdatingBody, msgDone, msgDoneOne, msgPinDesc, msgPinPrompt, msgPinOK, msgPaired, msgStatusArgs); err != nil {
		t.Error(err)
	}
	// A translation whose verbs do not match its msgid: msgfmt --check-format refuses it.
	bad := filepath.Join(t.TempDir(), "xx.po")
	po := "msgid \"\"\nmsgstr \"Content-Type: text/plain; charset=UTF-8\\n\"\n\n#, c-format\nmsgid \"%d files\"\nmsgstr \"%s fichiers\"\n"
	if err := os.WriteFile(bad, []byte(po), 0o644); err != nil {
		t.Fatal(err)
	}
	if loc, err := compileCatalog(ctx, bad, t.TempDir(), "xx"); err == nil {
		t.Errorf("a catalog with a wrong verb was compiled and loaded (%q)", loc.Lang())
	}
}

func TestTranslated(t *testing.T) {
	if err := translated(l10n.English(), msgUpdating); err == nil {
		t.Error("English passes for a translation")
	}
}

// TestMatchCount: the done notification's body is read back as the catalog's sentence for its
// count, in the plural form of that count; anything else is refused.
func TestMatchCount(t *testing.T) {
	dir := l10ntest.Catalogs(t, "fr", "ar")
	fr, ar := l10n.Load([]string{"fr"}, dir), l10n.Load([]string{"ar"}, dir)
	if fr.Lang() != "fr" || ar.Lang() != "ar" {
		t.Fatalf("catalogs not loaded: %q %q", fr.Lang(), ar.Lang())
	}
	for _, loc := range []*l10n.Locale{fr, ar, l10n.English()} {
		for _, n := range []int{0, 1, 2, 3, 7, 11, 42, 100, 1234} {
			size := loc.Size(int64(n) * 1_234_567)
			text := loc.TrN(msgDoneOne, msgDoneOther, n, n, size)
			gotN, gotSize, ok := matchCount(loc, msgDoneOne, msgDoneOther, text)
			if !ok || gotN != n || gotSize != size {
				t.Errorf("%q: %q read as %d, %q, %v; want %d, %q", loc.Lang(), text, gotN, gotSize, ok, n, size)
			}
		}
	}
	size := fr.Size(4096)
	for _, tt := range []struct{ name, text string }{
		{"English", l10n.English().TrN(msgDoneOne, msgDoneOther, 5, 5, size)},
		{"singular form with 5", fr.TrN(msgDoneOne, msgDoneOther, 1, 5, size)},
		{"plural form with 1", fr.TrN(msgDoneOne, msgDoneOther, 5, 1, size)},
		{"more after it", fr.TrN(msgDoneOne, msgDoneOther, 5, 5, size) + " Sa phrase suivante."},
		{"no size", fr.TrN(msgDoneOne, msgDoneOther, 5, 5, "")},
		{"empty", ""},
	} {
		if n, s, ok := matchCount(fr, msgDoneOne, msgDoneOther, tt.text); ok {
			t.Errorf("%s: %q read as the French sentence for %d, %q", tt.name, tt.text, n, s)
		}
	}
	// Arabic's forms for 1 and 2 do not write the count: the form tells it.
	if n, _, ok := matchCount(ar, msgDoneOne, msgDoneOther, ar.TrN(msgDoneOne, msgDoneOther, 2, 2, size)); !ok || n != 2 {
		t.Errorf("Arabic's form for 2 read as %d, %v", n, ok)
	}
}

// TestMatchText: the passphrase dialog's text with a stick's name the test does not know.
func TestMatchText(t *testing.T) {
	fr := l10n.Load([]string{"fr"}, l10ntest.Catalogs(t, "fr"))
	name := "QEMU HARDDISK (8,0 Go)"
	args, ok := matchText(fr, msgPinDesc, 1, fr.Tr(msgPinDesc, name))
	if !ok || len(args) != 1 || args[0] != name {
		t.Errorf("read %q, %v; want %q", args, ok, name)
	}
	for _, text := range []string{
		l10n.English().Tr(msgPinDesc, name),
		fr.Tr(msgPinDesc, name) + " ",
		strings.Replace(fr.Tr(msgPinDesc, name), name, "", 1),
		fr.Tr(msgPinPrompt),
	} {
		if args, ok := matchText(fr, msgPinDesc, 1, text); ok {
			t.Errorf("%q read as the French sentence with %q", text, args)
		}
	}
}

// TestCatalogArgs: the shape of a sentence follows the catalog's order of the arguments.
func TestCatalogArgs(t *testing.T) {
	for _, tt := range []struct {
		format, text string
		want         []string
	}{
		{"%[2]s then %[1]d.", "b c then 12.", []string{"12", "b c"}},
		{"%[1]d and %[1]d", "3 and 3", []string{"3", ""}},
		{"%[1]d and %[1]d", "3 and 4", nil},
		{"no verb (%%)", "no verb (%)", []string{"", ""}},
		{"%[1]d files", "x files", nil},
		{"%[1]d files", "-2 files", []string{"-2", ""}},
		{"a.b %[2]s", "axb c", nil},
	} {
		got, ok := catalogArgs(tt.text, 2, func(a ...any) string { return l10n.English().Tr(tt.format, a...) })
		if ok != (tt.want != nil) || strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%q in %q: %q, %v; want %q", tt.format, tt.text, got, ok, tt.want)
		}
	}
}
