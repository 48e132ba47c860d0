// Package demo is the extractor's test input: its texts, and what is not one.
package demo

import "tails-backup/l10n"

const described = "A described command."

func texts(loc *l10n.Locale, name string, n int) []string {
	dynamic := name + " is no literal"
	return []string{
		loc.Tr("Plain text."),
		// TRANSLATORS: %s names a stick.
		loc.Tr("%s was unplugged.", name),
		loc.Tr("Joined " + "text."),
		loc.Tr(described),
		loc.Tr(dynamic),
		loc.TrN("%d file", "%d files", n, n),
		l10n.Mark("marked text"),
		loc.Tr("Plain text."),
	}
}
