// Package l10n speaks to the person in the session's language: it picks the language from the
// environment as Tails sets it, reads the tails-backup gettext catalog, and formats numbers,
// sizes, durations and dates for that language.
//
// How the code uses it (internal/pot's test holds the catalogs to it):
//   - One *Locale per process, made in main with FromEnv(os.Getenv, Dir) and passed down: a
//     parameter loc *l10n.Locale (first, after a context), or a Loc field of a flow's struct.
//     A nil *Locale speaks English, so a value that was never given one still works.
//   - Every text a person reads is the literal first argument of loc.Tr (or the two first of
//     loc.TrN), or a string constant of the same package given by name: `make pot` finds only
//     those. A text defined before a Locale is at hand is marked with l10n.Mark and translated
//     where it is shown, loc.Tr(text).
//   - Whole sentences with format verbs, never fragments joined: "%s was unplugged", not
//     name + " was unplugged". With several verbs, each names its argument (%[1]s, %[2]d), so
//     that a translation can reorder them; a width goes before the index ("%-10[1]s").
//   - A number of things goes through TrN and the catalog's plural forms, never an "s" added:
//     loc.TrN("%d file could not be copied", "%d files could not be copied", n, n).
//   - An error that wraps another takes the translated format: fmt.Errorf(loc.Tr("... %w"), err).
//   - Sizes, durations, dates and lists through loc.Size, loc.Days, loc.In, loc.DateTime,
//     loc.List, loc.Decimal.
//   - A comment "// TRANSLATORS: ..." on the line before a call goes to the translators.
package l10n

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/leonelquinteros/gotext"
)

// Domain is the gettext domain of every text of tails-backup, the Go side's and the app's
// (app/tailsbackup/i18n.py).
const Domain = "tails-backup"

// Dir is where Debian (and `make install`) put the catalogs: Dir/<lang>/LC_MESSAGES/tails-backup.mo.
const Dir = "/usr/share/locale"

// Locale is one language's catalog. The nil *Locale, like a Locale without a catalog, speaks
// English (the msgids), so that a value that was never given one still says something.
type Locale struct {
	lang string     // the catalog's language ("fr", "ar_EG"); "" for English
	mo   *gotext.Mo // nil for English
	// trs are the catalog's entries by msgid, read once: gotext's own IsTranslated asks for
	// the plural form of 1, which is not the form of a singular text in Arabic (form 1 of 6).
	trs map[string]*gotext.Translation
}

// English is the Locale without a catalog.
func English() *Locale { return &Locale{} }

// FromEnv picks the language from the environment (getenv is os.Getenv or a test's) and loads
// its catalog from dir (Dir, or a test's folder). It falls back to English when no language
// asked for has a catalog.
func FromEnv(getenv func(string) string, dir string) *Locale {
	return Load(Languages(getenv), dir)
}

// Load returns the Locale of the first language of langs (as Languages gives them) that has a
// catalog in dir; English when none has, or when English comes first.
func Load(langs []string, dir string) *Locale {
	for _, lang := range langs {
		if lang == "en" || strings.HasPrefix(lang, "en_") {
			// The person prefers English to what comes after it.
			return English()
		}
		if mo := readCatalog(filepath.Join(dir, lang, "LC_MESSAGES", Domain+".mo")); mo != nil {
			return &Locale{lang: lang, mo: mo, trs: mo.GetDomain().GetTranslations()}
		}
	}
	return English()
}

// readCatalog reads a .mo file, or returns nil when it is missing or not a catalog. gotext
// reads a damaged file without an error and sizes its tables from the header, so the header's
// count is checked against the file's size first.
func readCatalog(path string) *gotext.Mo {
	buf, err := os.ReadFile(path)
	if err != nil || len(buf) < 28 {
		return nil
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(buf) {
	case gotext.MoMagicLittleEndian:
		bo = binary.LittleEndian
	case gotext.MoMagicBigEndian:
		bo = binary.BigEndian
	default:
		return nil
	}
	if count := uint64(bo.Uint32(buf[8:])); count == 0 || count*16 > uint64(len(buf)) {
		return nil
	}
	mo := gotext.NewMo()
	mo.Parse(buf)
	return mo
}

// Lang is the catalog's language ("fr", "ar"), "" for English.
func (l *Locale) Lang() string {
	if l == nil {
		return ""
	}
	return l.lang
}

// RTL: the language is written right to left.
func (l *Locale) RTL() bool {
	switch base(l.Lang()) {
	case "ar", "fa", "he", "ur", "ps", "ug", "yi":
		return true
	}
	return false
}

func base(lang string) string {
	if i := strings.IndexByte(lang, '_'); i >= 0 {
		return lang[:i]
	}
	return lang
}

// Tr translates msgid, a whole sentence, and formats it with args as fmt.Sprintf does. Several
// args are named with positional verbs (%[1]s, %[2]d) so that a translation can reorder them.
// Without args the translation is returned as it is ("%%" stays "%%"). `make pot` extracts
// msgid when it is a literal or a constant (internal/pot).
//
// In a language written right to left, a translation's text arguments are isolated (Isolate)
// and a translation that would start left to right (with a value, a verb) starts with an RLM:
// see bidiText.
func (l *Locale) Tr(msgid string, args ...any) string {
	if l != nil {
		if t, ok := l.trs[msgid]; ok {
			return l.bidiText(format(t.Get(), l.bidiArgs(args)))
		}
	}
	return format(msgid, args)
}

// TrN translates a text that depends on the number n through the catalog's plural forms
// (never by adding an "s"): one is the English singular, other the English plural. The count
// is usually one of args too: TrN("%d file", "%d files", n, n).
func (l *Locale) TrN(one, other string, n int, args ...any) string {
	var s string
	switch {
	case l != nil && l.trs[one] != nil:
		// Through a method value, with no vars: gotext would format the text itself (and vet
		// would ask for a constant format); format fills it.
		getN := l.mo.GetN
		return l.bidiText(format(getN(one, other, n), l.bidiArgs(args)))
	case n == 1:
		s = one
	default:
		s = other
	}
	return format(s, args)
}

// Mark marks a literal for `make pot` where it cannot be translated yet (a table of texts
// translated later with Tr); it returns msgid.
func Mark(msgid string) string { return msgid }

// format is fmt.Sprintf, except for a translation that uses none of the args (the Arabic "one
// file", which does not write the 1): fmt would append "%!(EXTRA ...)" to it.
func format(s string, args []any) string {
	if len(args) == 0 {
		return s
	}
	if len(Verbs(s)) == 0 {
		return strings.ReplaceAll(s, "%%", "%")
	}
	return fmt.Sprintf(s, args...)
}
