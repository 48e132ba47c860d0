package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"tails-backup/l10n"

	tbsync "tails-backup/sync"
)

// progressBar draws Mirror's progress on one terminal line, or as a line every few seconds
// when the output is not a terminal. The final line (PhaseDone) is drawn once, and nothing
// after it.
type progressBar struct {
	w        io.Writer
	loc      *l10n.Locale
	terminal bool
	last     time.Time
	started  time.Time
	lastLine string // the line drawn last, not drawn again
	done     bool   // the final line was drawn
}

// changeCost is what one change weighs in the percentage, in bytes of data copied: creating,
// deleting or changing the metadata of an entry costs a few system calls and a directory
// update, about as long as copying this much data to a USB stick.
const changeCost = 64 << 10

// progressFraction is how much of the run is done, in [0, 1]: the changes and the bytes to
// copy both count (a change as changeCost bytes), so that the percentage moves during the copy
// of one big file as during the creation of many small ones and reaches its end with both.
// It is below 1 until the run has ended with everything done.
func progressFraction(p tbsync.Progress) float64 {
	if p.Phase == tbsync.PhaseDone && p.FilesDone >= p.FilesTotal && p.BytesDone >= p.BytesTotal {
		return 1
	}
	total := float64(p.FilesTotal)*changeCost + float64(p.BytesTotal)
	if total <= 0 {
		return 0
	}
	done := float64(min(p.FilesDone, p.FilesTotal))*changeCost + float64(min(p.BytesDone, p.BytesTotal))
	return min(done/total, 0.99)
}

func (b *progressBar) update(p tbsync.Progress) {
	if b.done {
		return
	}
	now := time.Now()
	if b.started.IsZero() && p.Phase == tbsync.PhaseCopy {
		b.started = now
	}
	if !b.terminal && p.Phase != tbsync.PhaseDone && now.Sub(b.last) < 5*time.Second {
		return
	}
	var line string
	switch p.Phase {
	case tbsync.PhaseScan:
		// TRANSLATORS: %[1]d is a number of changes, %[2]s a size ("1.5 GB").
		line = b.loc.TrN("comparing: %[1]d change found so far, %[2]s to copy", "comparing: %[1]d changes found so far, %[2]s to copy",
			clampInt(p.FilesTotal), p.FilesTotal, b.loc.Size(p.BytesTotal))
	default:
		frac := progressFraction(p)
		const width = 30
		filled := int(frac * width)
		left := ""
		if elapsed := now.Sub(b.started); p.Phase == tbsync.PhaseCopy && frac > 0.01 && elapsed > time.Second {
			// TRANSLATORS: %s is a duration as Go writes it ("1m30s").
			left = b.loc.Tr(", %s left", (time.Duration(float64(elapsed)/frac) - elapsed).Round(time.Second))
		}
		path := ""
		if p.Phase != tbsync.PhaseDone {
			path = "  " + shorten(p.Path, 40)
		}
		// TRANSLATORS: %[1]d of %[2]d changes done, %[3]s of %[4]s copied (sizes: "1.5 MB").
		line = fmt.Sprintf("[%s%s] %3d%% ", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), int(frac*100)) +
			b.loc.Tr("%[1]d/%[2]d changes, %[3]s/%[4]s", p.FilesDone, p.FilesTotal, b.loc.Size(p.BytesDone), b.loc.Size(p.BytesTotal)) +
			left + path
	}
	b.done = p.Phase == tbsync.PhaseDone
	if line == b.lastLine {
		if b.done && b.terminal {
			fmt.Fprintln(b.w) // end the line already drawn
		}
		return
	}
	b.lastLine, b.last = line, now
	if b.terminal {
		fmt.Fprintf(b.w, "\r\033[K%s", line)
		if b.done {
			fmt.Fprintln(b.w)
		}
		return
	}
	fmt.Fprintln(b.w, line)
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n+3:]
}
