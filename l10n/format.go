package l10n

import (
	"strconv"
	"strings"
	"time"
)

// part is a part of a value that this package formats (a size's number, a date's words): Tr
// does not isolate it (see Isolate) as it does a string, since it is the language's own; the
// value is isolated as a whole where a sentence inserts it.
type part string

// decimalSeparator is the language's decimal separator, as its CLDR data has it.
func (l *Locale) decimalSeparator() string {
	switch base(l.Lang()) {
	case "", "en", "ja", "zh", "ko", "he", "th", "ga", "ur", "hi", "ms", "sw", "ta":
		return "."
	case "ar", "fa", "ps":
		return "\u066b" // ARABIC DECIMAL SEPARATOR
	}
	// Most other languages of Tails (fr, de, es, it, pt, ru, tr, pl, nl, ...) write a comma.
	return ","
}

// Decimal writes f with prec digits after the language's decimal separator: "15.5", "15,5".
func (l *Locale) Decimal(f float64, prec int) string {
	s := strconv.FormatFloat(f, 'f', prec, 64)
	if sep := l.decimalSeparator(); sep != "." {
		s = strings.Replace(s, ".", sep, 1)
	}
	return s
}

// Size writes a number of bytes in decimal units, as the file managers show it: "15.5 GB",
// "512 bytes" ("15,5 Go" in French).
func (l *Locale) Size(n int64) string {
	const unit = 1000 // what file managers show
	if n < unit {
		return l.TrN("%d byte", "%d bytes", int(n), n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := part(l.Decimal(float64(n)/float64(div), 1))
	switch exp {
	case 0:
		// TRANSLATORS: a size, as are the units after it; a no-break space (U+00A0) between
		// the number and the unit keeps them on one line where a sentence wraps.
		return l.Tr("%s kB", v)
	case 1:
		return l.Tr("%s MB", v)
	case 2:
		return l.Tr("%s GB", v)
	case 3:
		return l.Tr("%s TB", v)
	case 4:
		return l.Tr("%s PB", v)
	}
	return l.Tr("%s EB", v)
}

// Days says how long a time is in whole days: "less than a day", "1 day", "9 days".
func (l *Locale) Days(d time.Duration) string {
	days := int(max(d, 0) / (24 * time.Hour))
	if days == 0 {
		return l.Tr("less than a day")
	}
	return l.TrN("%d day", "%d days", days, days)
}

// In says how far ahead a time is: "in about 3 days", "in about 5 hours".
func (l *Locale) In(d time.Duration) string {
	switch {
	case d < time.Minute:
		return l.Tr("in less than a minute")
	case d < time.Hour:
		m := max(int((d+30*time.Second)/time.Minute), 1)
		return l.TrN("in about %d minute", "in about %d minutes", m, m)
	case d < 36*time.Hour:
		h := int((d + 30*time.Minute) / time.Hour)
		return l.TrN("in about an hour", "in about %d hours", h, h)
	}
	days := int((d + 12*time.Hour) / (24 * time.Hour))
	return l.TrN("in about %d day", "in about %d days", days, days)
}

// DateTime writes a time to the minute, in its own location: "Mon 2 Jan 2006 15:04".
func (l *Locale) DateTime(t time.Time) string {
	var weekday string
	switch t.Weekday() {
	case time.Monday:
		weekday = l.Tr("Mon")
	case time.Tuesday:
		weekday = l.Tr("Tue")
	case time.Wednesday:
		weekday = l.Tr("Wed")
	case time.Thursday:
		weekday = l.Tr("Thu")
	case time.Friday:
		weekday = l.Tr("Fri")
	case time.Saturday:
		weekday = l.Tr("Sat")
	default:
		weekday = l.Tr("Sun")
	}
	months := [...]string{l.Tr("Jan"), l.Tr("Feb"), l.Tr("Mar"), l.Tr("Apr"), l.Tr("May"), l.Tr("Jun"),
		l.Tr("Jul"), l.Tr("Aug"), l.Tr("Sep"), l.Tr("Oct"), l.Tr("Nov"), l.Tr("Dec")}
	// TRANSLATORS: a date and time: weekday, day of the month, month, year, hour:minute
	// ("Mon 2 Jan 2006 15:04"); reorder them as your language writes a date.
	return l.Tr("%[1]s %[2]d %[3]s %[4]d %[5]s", part(weekday), t.Day(), part(months[t.Month()-1]), t.Year(), part(t.Format("15:04")))
}

// List joins the items of a list as the language writes it: "3 differences, 1 problem".
func (l *Locale) List(items ...string) string {
	// TRANSLATORS: what separates the items of a list ("3 differences, 1 problem"); Arabic
	// writes "، ".
	return strings.Join(items, l.Tr(", "))
}
