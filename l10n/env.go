package l10n

import "strings"

// Languages lists the catalogs to try, in order, from the environment as Tails sets it (LANG,
// and LANGUAGE for the person's order of preference; Tails' Welcome Screen sets LANG=fr_FR.UTF-8
// and LANGUAGE=fr_FR for French). Each value is reduced to what a catalog folder is named:
// "fr_FR.UTF-8@euro" gives "fr_FR" then "fr".
//
// As GNU gettext does, LANGUAGE (a colon-separated list) comes first, and the first of LC_ALL,
// LC_MESSAGES and LANG that is set comes after it; a locale set to "C" or "POSIX" means English,
// LANGUAGE included. Unlike GNU gettext, LANGUAGE counts when no locale is set at all
// (`LANGUAGE=fr tails-backup status` in a bare environment speaks French): a Go program does
// not need the C library's locale to print a translated text.
//
// A value that is not a plain language name (letters, digits, '_', '-') is skipped: it becomes
// part of a file path.
func Languages(getenv func(string) string) []string {
	locale := ""
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := getenv(name); v != "" {
			locale = v
			break
		}
	}
	if l := trimLocale(locale); l == "C" || l == "POSIX" {
		return nil
	}
	var out []string
	add := func(v string) {
		l := trimLocale(v)
		if !plainName(l) {
			return
		}
		for _, c := range []string{l, base(l)} {
			if !contains(out, c) {
				out = append(out, c)
			}
		}
	}
	for _, v := range strings.Split(getenv("LANGUAGE"), ":") {
		add(v)
	}
	add(locale)
	return out
}

// trimLocale drops the codeset and the modifier of a locale name: "fr_FR.UTF-8@euro" is "fr_FR".
func trimLocale(v string) string {
	if i := strings.IndexAny(v, ".@"); i >= 0 {
		v = v[:i]
	}
	return v
}

func plainName(l string) bool {
	if l == "" || len(l) > 32 || l == "C" || l == "POSIX" || l[0] == '-' || l[0] == '_' {
		return false
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
