package demo

import "tails-backup/l10n"

var _ = l10n.Mark("Go text – with a dash")
