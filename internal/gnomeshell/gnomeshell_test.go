package gnomeshell_test

import (
	"context"
	"testing"
	"time"

	"tails-backup/internal/gnomeshell"
)

func TestSessionStarts(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			start := time.Now()
			s := gnomeshell.Start(t, shell)
			t.Logf("%s ready in %v", shell, time.Since(start).Round(time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			ns, err := s.Notifications(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ns) != 0 {
				t.Errorf("the tray holds %v after start; want nothing (the shell's own banners dismissed)", ns)
			}
		})
	}
}
