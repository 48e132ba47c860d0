package main

// The findings of a verify (and of a restore's check) on the terminal: one line a difference
// or a problem, then a summary.

import (
	"fmt"
	"io"
	"strings"

	"tails-backup/l10n"
	"tails-backup/session"
	"tails-backup/wire"
)

// verifyFindings gathers what a verify printed.
type verifyFindings struct {
	w        io.Writer
	loc      *l10n.Locale
	changes  int64 // change lines printed
	problems int64
	warnings int64
}

// event prints a change or a problem event; other events are ignored.
func (f *verifyFindings) event(ev wire.Event) {
	switch ev.Phase {
	case wire.PhaseChange:
		f.changes++
		fmt.Fprintln(f.w, changeLine(ev))
	case wire.PhaseProblem:
		// TRANSLATORS: the start of a line of verify's findings: "problem: persistence.conf: It is missing, ...".
		label := f.loc.Tr("problem")
		if ev.Warning {
			// TRANSLATORS: the start of a line of verify's findings: "warning: .: The root folder has mode 0775, ...".
			label = f.loc.Tr("warning")
			f.warnings++
		} else {
			f.problems++
		}
		// TRANSLATORS: one finding of verify: "problem" or "warning", the file, what is wrong.
		fmt.Fprintln(f.w, f.loc.Tr("%[1]s: %[2]s: %[3]s", label, shownPath(ev.Path, ""), oneLine(session.FindingText(f.loc, ev))))
	}
}

// changeLine writes one difference close to rsync --itemize-changes: a change letter (> the
// content would be copied, c a non-file would be created or changed, h a hard link, . only
// metadata, *deleting), a type letter, what differs, and the path ("/" after a folder).
func changeLine(ev wire.Event) string {
	typ := ev.Type
	if len(typ) != 1 || !strings.Contains("fdLDS", typ) {
		typ = "?"
	}
	path := shownPath(ev.Path, typ)
	what := strings.Join(ev.What, ",")
	var y byte
	switch ev.Kind {
	case "delete":
		return fmt.Sprintf("%-16s %s", "*deleting", path)
	case "create":
		y, what = 'c', "new"
		if typ == "f" {
			y = '>'
		}
	case "update":
		y = 'c'
		switch {
		case what == "links":
			y = 'h'
		case typ == "f":
			y = '>'
		}
	case "metadata":
		y = '.'
	default:
		y = '?'
	}
	if what == "" {
		what = "?"
	}
	return fmt.Sprintf("%c%s %-13s %s", y, typ, oneLine(what), path)
}

// shownPath is a path as printed: on one line, "/" after a folder.
func shownPath(p, typ string) string {
	p = oneLine(p)
	if p == "" {
		p = "."
	}
	if typ == "d" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	return p
}

// oneLine replaces the control characters a file name may hold, so that a line stays a line.
func oneLine(s string) string { return session.OneLine(s) }

// errVerifyFailed is the error of a verify that found differences or problems: the summary
// was printed, the exit status is 1.
type errVerifyFailed struct{ advice string }

func (e errVerifyFailed) Error() string { return e.advice }

// summarize prints the end of the output and returns the command's result.
func (f *verifyFindings) summarize(rep *wire.Report, checksum bool, advice string) error {
	if rep == nil {
		rep = &wire.Report{}
	}
	if rep.ChangesNotListed > 0 {
		fmt.Fprintln(f.w, f.loc.Tr("... and %d more differences, not listed.", rep.ChangesNotListed))
	}
	for _, e := range rep.Errors {
		fmt.Fprintln(f.w, f.loc.Tr("error: %[1]s: could not be compared (%[2]s: %[3]s)", oneLine(e.Path), e.Op, oneLine(e.Error)))
	}
	if n := rep.ErrorCount - int64(len(rep.Errors)); n > 0 {
		fmt.Fprintln(f.w, f.loc.Tr("error: ... and %d more files could not be compared.", n))
	}
	if len(rep.Features) > 0 {
		fmt.Fprintln(f.w, f.loc.Tr("Features Tails would activate on the backup: %s.", strings.Join(rep.Features, ", ")))
	} else {
		fmt.Fprintln(f.w, f.loc.Tr("Features Tails would activate on the backup: none."))
	}
	diffs := rep.Created + rep.Updated + rep.MetadataOnly + rep.Deleted
	if diffs < f.changes+rep.ChangesNotListed {
		diffs = f.changes + rep.ChangesNotListed
	}
	problems := max(rep.Problems, f.problems)
	if diffs == 0 && problems == 0 && rep.ErrorCount == 0 {
		if checksum {
			fmt.Fprintln(f.w, f.loc.Tr("The backup is identical and valid (metadata and content compared)."))
		} else {
			fmt.Fprintln(f.w, f.loc.Tr("The backup is identical and valid (metadata compared; add --checksum to compare the content of the files too)."))
		}
		return nil
	}
	parts := []string{
		f.loc.TrN("%d difference", "%d differences", clampInt(diffs), diffs),
		f.loc.TrN("%d problem", "%d problems", clampInt(problems), problems),
	}
	if rep.ErrorCount > 0 {
		parts = append(parts, f.loc.TrN("%d file could not be compared", "%d files could not be compared", clampInt(rep.ErrorCount), rep.ErrorCount))
	}
	fmt.Fprintln(f.w, f.loc.List(parts...)+".")
	return errVerifyFailed{advice}
}

// clampInt is n as an int for choosing a plural form (which only needs its magnitude).
func clampInt(n int64) int { return int(min(max(n, 0), 1<<31-1)) }
