package main

// The terminal side of a creation (session.Creation): its steps and percentages.

import (
	"fmt"
	"io"

	"tails-backup/l10n"

	tbsync "tails-backup/sync"
	"tails-backup/wire"
)

// createProgress shows the steps, and the percentage of the long ones: redrawn on one line on
// a terminal, else a line every 10%. The percentage is progressFraction's, as in sync and
// restore: the changes count as well as the bytes, it is below 100% until the operation has
// ended, and 100% is shown once.
type createProgress struct {
	w        io.Writer
	warn     io.Writer // standard error, for the warnings
	loc      *l10n.Locale
	terminal bool
	steps, n int
	pct      int  // last percentage shown, -1 for none
	open     bool // a percentage is drawn on a terminal line not ended yet
	counted  bool // an event with totals came in the current step
}

func (p *createProgress) Step(what string) {
	p.Finish()
	p.n++
	p.pct, p.counted = -1, false
	fmt.Fprintf(p.w, "[%d/%d] %s...\n", p.n, p.steps, what)
}

// Note prints a line about the current step.
func (p *createProgress) Note(s string) {
	p.Finish()
	fmt.Fprintf(p.w, "      %s\n", s)
}

// Event shows a progress event of the helper. The comparison before an update's copy has no
// total yet. Everything counted is not the end (the operation may still flush, or its final
// event may be missing): a terminal shows 99% until Complete, other output waits for it.
func (p *createProgress) Event(ev wire.Event) {
	if ev.Phase == string(tbsync.PhaseScan) || (ev.FilesTotal <= 0 && ev.BytesTotal <= 0) {
		return
	}
	phase := tbsync.PhaseCopy // the refresh of the system partition has no phase of its own for its end
	if ev.Phase == string(tbsync.PhaseDone) {
		phase = tbsync.PhaseDone
	}
	pr := tbsync.Progress{Phase: phase, FilesDone: ev.FilesDone, FilesTotal: ev.FilesTotal, BytesDone: ev.BytesDone, BytesTotal: ev.BytesTotal}
	p.counted = true
	allCounted := pr.FilesDone >= pr.FilesTotal && pr.BytesDone >= pr.BytesTotal
	if !p.terminal && allCounted && phase != tbsync.PhaseDone {
		return
	}
	p.show(int(progressFraction(pr) * 100))
}

// Complete shows that the operation whose events came ended with everything done: 100%, once.
func (p *createProgress) Complete() {
	if p.counted {
		p.show(100)
	}
	p.Finish()
}

func (p *createProgress) show(pct int) {
	switch {
	case p.pct == 100:
		return // the last line, once
	case p.terminal:
		if pct != p.pct {
			fmt.Fprintf(p.w, "\r\033[K      %d%%", pct)
			p.open = true
		}
	case p.pct < 0 || pct/10 > p.pct/10:
		fmt.Fprintf(p.w, "      %d%%\n", pct)
	default:
		return
	}
	p.pct = pct
}

// Finish ends a percentage line left open on a terminal.
func (p *createProgress) Finish() {
	if p.open {
		fmt.Fprintln(p.w)
		p.open = false
	}
}

// Warn prints a warning on standard error.
func (p *createProgress) Warn(s string) {
	p.Finish()
	fmt.Fprintln(p.warn, p.loc.Tr("Warning: %s", s))
}
