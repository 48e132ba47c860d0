package session

import "time"

// ETA turns the helper's progress into a percentage and a time left. The rate is
// measured over the copy so far, so the estimate settles as the copy goes on; it stays unknown
// for the first seconds and the first percent, when it would be noise.
type ETA struct {
	start   time.Time
	started bool
}

const (
	etaMinElapsed  = 3 * time.Second
	etaMinFraction = 0.01
)

// Update returns the percentage done and, when known, the time left.
func (e *ETA) Update(now time.Time, bytesDone, bytesTotal, filesDone, filesTotal int64) (percent int, left time.Duration, known bool) {
	if !e.started {
		e.start, e.started = now, true
	}
	frac := 1.0
	switch {
	case bytesTotal > 0:
		frac = float64(bytesDone) / float64(bytesTotal)
	case filesTotal > 0:
		frac = float64(filesDone) / float64(filesTotal)
	}
	frac = min(max(frac, 0), 1)
	percent = int(frac * 100)
	elapsed := now.Sub(e.start)
	if elapsed < etaMinElapsed || frac < etaMinFraction || frac >= 1 {
		return percent, 0, false
	}
	left = time.Duration(float64(elapsed)/frac) - elapsed
	return percent, left, true
}
