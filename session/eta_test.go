package session

import (
	"testing"
	"time"
)

func TestETA(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var e ETA
	if p, _, known := e.Update(t0, 0, 1000, 0, 10); p != 0 || known {
		t.Errorf("at start: %d%%, known %v", p, known)
	}
	if _, _, known := e.Update(t0.Add(time.Second), 500, 1000, 5, 10); known {
		t.Error("time left known after one second: it is noise then")
	}
	p, left, known := e.Update(t0.Add(10*time.Second), 250, 1000, 2, 10)
	if p != 25 || !known || left != 30*time.Second {
		t.Errorf("at 25%% after 10 s: %d%%, %v, %v; want 25%%, 30s", p, left, known)
	}
	if p, _, known := e.Update(t0.Add(20*time.Second), 1000, 1000, 10, 10); p != 100 || known {
		t.Errorf("at the end: %d%%, known %v", p, known)
	}
	var files ETA
	if p, _, _ := files.Update(t0, 0, 0, 3, 4); p != 75 {
		t.Errorf("no bytes to copy, 3 of 4 entries: %d%%, want 75%%", p)
	}
	var overshoot ETA
	if p, _, _ := overshoot.Update(t0, 1200, 1000, 0, 0); p != 100 {
		t.Errorf("a file that grew during the copy: %d%%, want 100%%", p)
	}
}
