package gnomeshell_test

import (
	"context"
	"os"
	"path/filepath"
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

// TestShareCommand runs a program of the session's file system on a folder of the host shared
// with it: it reads what the host wrote there, and the host reads what it wrote.
func TestShareCommand(t *testing.T) {
	for _, shell := range gnomeshell.Shells() {
		t.Run(shell.String(), func(t *testing.T) {
			s := gnomeshell.Start(t, shell)
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "in"), []byte("from the host\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			inside, err := s.Share(dir)
			if err != nil {
				t.Fatal(err)
			}
			cmd := s.Command("/bin/sh", []string{"-c", `cat "$1/in" && echo "$WAYLAND_DISPLAY $GREETING" >"$1/out"`, "sh", inside}, "GREETING=hello")
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != "from the host\n" {
				t.Fatalf("%v in the session: %q, %v; want the host's file", cmd.Args, out, err)
			}
			got, err := os.ReadFile(filepath.Join(dir, "out"))
			if err != nil || string(got) != "wayland-0 hello\n" {
				t.Fatalf("the file the session wrote: %q, %v; want the session's display and the given variable", got, err)
			}
			if shell == gnomeshell.Trixie48 && inside == dir {
				t.Errorf("Share(%s) = the host's path, want one inside the Debian 13 root", dir)
			}
		})
	}
}
