package l10n_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/l10n"
	"tails-backup/l10n/l10ntest"
)

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestLanguages(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", nil, nil},
		{"Tails in French", map[string]string{"LANG": "fr_FR.UTF-8", "LANGUAGE": "fr_FR"}, []string{"fr_FR", "fr"}},
		{"LANG only", map[string]string{"LANG": "ar_EG.UTF-8"}, []string{"ar_EG", "ar"}},
		{"LANGUAGE alone counts", map[string]string{"LANGUAGE": "fr"}, []string{"fr"}},
		{"LANGUAGE list first, then the locale", map[string]string{"LANGUAGE": "ar:fr_CA", "LANG": "de_DE.UTF-8"}, []string{"ar", "fr_CA", "fr", "de_DE", "de"}},
		{"LC_ALL before LC_MESSAGES before LANG", map[string]string{"LC_ALL": "ar_SA.UTF-8", "LC_MESSAGES": "fr_FR.UTF-8", "LANG": "de_DE.UTF-8"}, []string{"ar_SA", "ar"}},
		{"LC_MESSAGES before LANG", map[string]string{"LC_MESSAGES": "fr_FR.UTF-8", "LANG": "de_DE.UTF-8"}, []string{"fr_FR", "fr"}},
		{"C locale means English, LANGUAGE too", map[string]string{"LC_ALL": "C", "LANGUAGE": "fr"}, nil},
		{"POSIX locale", map[string]string{"LANG": "POSIX", "LANGUAGE": "fr"}, nil},
		{"C.UTF-8 locale", map[string]string{"LANG": "C.UTF-8", "LANGUAGE": "fr"}, nil},
		{"modifier dropped", map[string]string{"LANG": "ca_ES.UTF-8@valencia"}, []string{"ca_ES", "ca"}},
		{"no path in a name", map[string]string{"LANGUAGE": "../../etc:fr", "LANG": "x/y"}, []string{"fr"}},
		{"empty items skipped", map[string]string{"LANGUAGE": "::fr::"}, []string{"fr"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := l10n.Languages(env(tt.env)); !slices.Equal(got, tt.want) {
				t.Errorf("Languages = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzLanguages: whatever the environment holds, the languages are plain names, safe in a
// file path, without repetition.
func FuzzLanguages(f *testing.F) {
	f.Add("fr_FR:ar", "fr_FR.UTF-8@euro")
	f.Add("../x", "C")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, language, lang string) {
		got := l10n.Languages(env(map[string]string{"LANGUAGE": language, "LANG": lang}))
		seen := map[string]bool{}
		for _, l := range got {
			if l == "" || l == "." || l == ".." || strings.ContainsAny(l, "/\\.\x00@:") || len(l) > 32 {
				t.Errorf("Languages(%q, %q) gives %q", language, lang, l)
			}
			if seen[l] {
				t.Errorf("Languages(%q, %q) repeats %q", language, lang, l)
			}
			seen[l] = true
		}
	})
}

func TestLoad(t *testing.T) {
	dir := l10ntest.Catalogs(t, "fr", "ar")
	damaged := filepath.Join(dir, "de", "LC_MESSAGES")
	if err := os.MkdirAll(damaged, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(damaged, l10n.Domain+".mo"), []byte("\xde\x12\x04\x95 not a catalog, and a huge count"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		langs []string
		want  string // the language loaded, "" for English
	}{
		{[]string{"fr_FR", "fr"}, "fr"},
		{[]string{"ar_EG", "ar"}, "ar"},
		{[]string{"de_DE", "de", "fr"}, "fr"}, // a damaged catalog is passed over
		{[]string{"en_US", "en", "fr"}, ""},   // English comes first
		{[]string{"tlh"}, ""},                 // no catalog: English
		{nil, ""},
	} {
		loc := l10n.Load(tt.langs, dir)
		if loc.Lang() != tt.want {
			t.Errorf("Load(%q) loads %q, want %q", tt.langs, loc.Lang(), tt.want)
		}
	}
	if loc := l10n.Load([]string{"fr"}, filepath.Join(dir, "missing")); loc.Lang() != "" || loc.Tr("Reminders: off.") != "Reminders: off." {
		t.Errorf("without catalogs: %q, %q", loc.Lang(), loc.Tr("Reminders: off."))
	}
}

func TestTexts(t *testing.T) {
	dir := l10ntest.Catalogs(t, "fr", "ar")
	fr, ar := l10n.Load([]string{"fr"}, dir), l10n.Load([]string{"ar"}, dir)
	var none *l10n.Locale // what a value that was never given a Locale holds
	en := l10n.English()
	day := 24 * time.Hour
	monday := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, got, want string
	}{
		{"English text", en.Tr("Reminders: off."), "Reminders: off."},
		{"nil Locale", none.Tr("%s was unplugged; plug it in again and run '%s' again", "X", "y"), "X was unplugged; plug it in again and run 'y' again"},
		{"French text", fr.Tr("Reminders: off."), "Rappels : désactivés."},
		{"Arabic text", ar.Tr("Reminders: off."), "التذكيرات: متوقفة."},
		{"untranslated text stays English", fr.Tr("no such text %d", 3), "no such text 3"},
		{"untranslated plural follows English", fr.TrN("no %d such", "no %d suches", 0, 0), "no 0 suches"},

		{"English plural 1", en.Days(day), "1 day"},
		{"English plural 0", en.TrN("%d day", "%d days", 0, 0), "0 days"},
		{"French plural 0 is singular", fr.TrN("%d day", "%d days", 0, 0), "0 jour"},
		{"French plural 1", fr.Days(day), "1 jour"},
		{"French plural 2", fr.Days(2 * day), "2 jours"},
		{"Arabic zero", ar.TrN("%d day", "%d days", 0, 0), "0 يوم"},
		{"Arabic one, without the number", ar.Days(day), "يوم واحد"},
		{"Arabic two, without the number", ar.Days(2 * day), "يومان"},
		{"Arabic few", ar.Days(3 * day), "3 أيام"},
		{"Arabic many", ar.Days(11 * day), "11 يومًا"},
		{"Arabic other", ar.Days(100 * day), "100 يوم"},
		{"Arabic 103 is few", ar.Days(103 * day), "103 أيام"},

		{"English in an hour", en.In(70 * time.Minute), "in about an hour"},
		{"English in a minute", en.In(61 * time.Second), "in about 1 minute"},
		{"French in hours", fr.In(5 * time.Hour), "dans environ 5 heures"},
		{"Arabic in two hours", ar.In(2 * time.Hour), "خلال ساعتين تقريبًا"},

		{"English size", en.Size(15_500_000_000), "15.5 GB"},
		{"English bytes", en.Size(512), "512 bytes"},
		{"English byte", en.Size(1), "1 byte"},
		{"French size", fr.Size(15_500_000_000), "15,5 Go"},
		{"French bytes", fr.Size(512), "512 octets"},
		{"Arabic size", ar.Size(1_500_000), "1٫5\u00a0م.ب"},
		{"French decimal", fr.Decimal(3.25, 2), "3,25"},

		{"English date", en.DateTime(monday), "Mon 10 Mar 2025 12:00"},
		{"French date", fr.DateTime(monday), "lun. 10 mars 2025 à 12:00"},
		{"Arabic date", ar.DateTime(monday), "الاثنين 10 مارس 2025، 12:00"},

		{"English list", en.List("3 differences", "1 problem"), "3 differences, 1 problem"},
		{"Arabic list", ar.List("أ", "ب"), "أ، ب"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if !ar.RTL() || fr.RTL() || en.RTL() {
		t.Errorf("RTL: ar %v, fr %v, en %v", ar.RTL(), fr.RTL(), en.RTL())
	}
}

// A translation that leaves an argument out (Arabic's "one day") is not followed by fmt's
// "%!(EXTRA ...)"; "%%" in it is still one percent sign.
func TestFormatWithoutVerbs(t *testing.T) {
	var en *l10n.Locale
	if got := en.TrN("one day", "%d days", 1, 1); got != "one day" {
		t.Errorf("TrN = %q", got)
	}
	if got := en.Tr("100%% done", 7); got != "100% done" {
		t.Errorf("Tr = %q", got)
	}
}

// TestBidi: in Arabic, the values a translation inserts are isolated, so that a path or a
// stick's name reads in its own direction, and a translation that would start left to right
// starts with an RLM, so that the sentence is laid out right to left; numbers, the package's
// own values, untranslated texts and other languages are left as they are.
func TestBidi(t *testing.T) {
	dir := l10ntest.Catalogs(t, "fr", "ar")
	fr, ar := l10n.Load([]string{"fr"}, dir), l10n.Load([]string{"ar"}, dir)
	var none *l10n.Locale
	const fsi, pdi, rlm = "\u2068", "\u2069", "\u200f"
	boom := errors.New("open /var/lib/x: permission denied")
	for _, tt := range []struct {
		name, got, want string
	}{
		{"a name before Arabic text is isolated, no RLM needed", ar.Tr("%s is running", "Thunderbird"),
			fsi + "Thunderbird" + pdi + " قيد التشغيل"},
		{"a stick's name and size: both isolated, no letter outside, an RLM", ar.Tr("%[1]s, %[2]s", "SanDisk Cruzer Blade", ar.Size(16_008_609_792)),
			rlm + fsi + "SanDisk Cruzer Blade" + pdi + "، " + fsi + "16٫0\u00a0غ.ب" + pdi},
		{"that name in a sentence: isolated, right to left inside", ar.Tr("Everything on %s is being erased.", ar.Tr("%[1]s, %[2]s", "SanDisk", ar.Size(1e9))),
			"يجري محو كل ما على " + fsi + rlm + fsi + "SanDisk" + pdi + "، " + fsi + "1٫0\u00a0غ.ب" + pdi + pdi + "."},
		{"a list's separator, no letter nor value: as it is", ar.Tr(", "), "، "},
		{"a number alone: as it is", ar.Tr("%d%% done.", 42), "اكتمل 42%."},
		{"a translation that starts with a Latin word gets an RLM", ar.Tr("This Tails is itself a backup Tails: it is updated from its main Tails, not the other way around."),
			rlm + "Tails هذا هو نفسه Tails احتياطي: يُحدَّث من Tails الرئيسي، وليس العكس."},
		{"an error is isolated, the Latin start gets an RLM", ar.Tr("tails-backup: %v; continuing, but a crash could leave a core dump", boom),
			rlm + "tails-backup: " + fsi + boom.Error() + pdi + "؛ سنتابع، لكن أي انهيار قد يترك ملف تفريغ للذاكرة"},
		{"a format for fmt.Errorf that starts with a verb gets an RLM", ar.Tr("%s is running"), rlm + "%s قيد التشغيل"},
		{"numbers are not isolated", ar.Days(3 * 24 * time.Hour), "3 أيام"},
		{"the package's own values are not isolated inside", ar.Size(1_500_000), "1٫5\u00a0م.ب"},
		{"an Arabic text is left as it is", ar.Tr("Reminders: off."), "التذكيرات: متوقفة."},
		{"an untranslated text is left as it is", ar.Tr("no such text %s", "/dev/sdb"), "no such text /dev/sdb"},
		{"French is left as it is", fr.Tr("%s is running", "Thunderbird"), "Thunderbird est en cours d'exécution"},
		{"English is left as it is", none.Tr("%s is running", "Thunderbird"), "Thunderbird is running"},
		{"Isolate in Arabic", ar.Isolate("/dev/sdb"), fsi + "/dev/sdb" + pdi},
		{"Isolate of nothing", ar.Isolate(""), ""},
		{"Isolate in French", fr.Isolate("/dev/sdb"), "/dev/sdb"},
		{"Isolate in English", none.Isolate("/dev/sdb"), "/dev/sdb"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: %+q, want %+q", tt.name, tt.got, tt.want)
		}
	}
}
