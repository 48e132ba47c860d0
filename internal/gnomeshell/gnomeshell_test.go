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

// TestSessionInArabic starts GNOME Shell 48 in Arabic, as Tails does: the shell lays its text
// out right to left, and a program run in the session has the Arabic locale (generated in the
// Debian 13 root; setlocale fails without it) and the fonts with Arabic glyphs.
func TestSessionInArabic(t *testing.T) {
	s := gnomeshell.StartIn(t, gnomeshell.Trixie48, "ar_EG")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir, err := s.Eval(ctx, "imports.gi.Clutter.get_default_text_direction() === imports.gi.Clutter.TextDirection.RTL")
	if err != nil {
		t.Fatal(err)
	}
	if dir != "true" {
		t.Errorf("the shell's text direction is right to left: %s; want true", dir)
	}
	cmd := s.Command("/usr/bin/python3", []string{"-c",
		"import locale; print(locale.setlocale(locale.LC_ALL, ''))"})
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "ar_EG.UTF-8\n" {
		t.Errorf("the locale of a program in the session: %q, %v; want ar_EG.UTF-8", out, err)
	}
	cmd = s.Command("/usr/bin/fc-list", []string{":lang=ar", "family"})
	if out, err := cmd.CombinedOutput(); err != nil || len(out) == 0 {
		t.Errorf("no font with Arabic glyphs in the session: %q, %v", out, err)
	}
}
