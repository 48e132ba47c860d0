package main

// The terminal side of a creation (session.Creation): its steps and percentages.

import (
	"fmt"
	"io"

	"tails-backup/wire"
)

// createProgress shows the steps, and the percentage of the long ones: redrawn on one line on
// a terminal, else a line every 10%.
type createProgress struct {
	w        io.Writer
	warn     io.Writer // standard error, for the warnings
	terminal bool
	steps, n int
	pct      int  // last percentage shown, -1 for none
	open     bool // a percentage is drawn on a terminal line not ended yet
}

func (p *createProgress) Step(what string) {
	p.Finish()
	p.n++
	p.pct = -1
	fmt.Fprintf(p.w, "[%d/%d] %s...\n", p.n, p.steps, what)
}

// Note prints a line about the current step.
func (p *createProgress) Note(s string) {
	p.Finish()
	fmt.Fprintf(p.w, "      %s\n", s)
}

// Event shows a progress event of the helper: bytes done of the bytes to copy (files when
// there are no bytes to count). The comparison before an update's copy has no total yet.
func (p *createProgress) Event(ev wire.Event) {
	done, total := ev.BytesDone, ev.BytesTotal
	if total <= 0 {
		done, total = ev.FilesDone, ev.FilesTotal
	}
	if ev.Phase == "scan" || total <= 0 {
		return
	}
	pct := int(min(100, max(0, done)*100/total))
	switch {
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
	fmt.Fprintln(p.warn, "Warning: "+s)
}
