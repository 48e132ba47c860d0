// Command demo is `make demo`: it runs the product in a QEMU virtual machine that plays a
// Tails computer (real udev, udisks2, polkit, dm-crypt, USB sticks plugged and pulled) and
// tells, in plain sentences, what a Tails user would see: making a backup, booting it (alone,
// with a legacy BIOS and with UEFI), updating it by plugging it in, and pulling it out in the
// middle of an update. Details and timings go to the
// run's log file.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tails-backup/e2e"
	"tails-backup/internal/reporoot"
)

type stdout struct{}

func (stdout) Logf(format string, args ...any) { fmt.Printf(format+"\n", args...) }

// machine shows the harness' lines about the virtual machine itself (the image build, which
// takes minutes the first time, and the boot); the rest goes to the log file only.
type machine struct{}

func (machine) Logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	if strings.HasPrefix(line, "guest image: build") || strings.HasPrefix(line, "guest up") {
		fmt.Println("(" + line + ")")
	}
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Minute)
	defer cancel()
	repo, err := reporoot.Find()
	if err != nil {
		return err
	}
	leg, err := e2e.LegFromEnv()
	if err != nil {
		return err
	}
	dir, err := e2e.NewRunDir(repo, leg)
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "e2e.log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	say := e2e.TeeLogger(f, stdout{})
	log := e2e.TeeLogger(f, machine{})
	fmt.Println("tails-backup demo: a virtual machine plays a Tails computer with its USB sticks.")
	fmt.Printf("It plays Tails %d: Debian %s with the real udev, udisks2, polkit and disk encryption, and\n", leg.Tails, leg.Suite)
	fmt.Println("tails-backup installed from its Debian package; the sticks are plugged and pulled as USB")
	fmt.Println("devices. The first run builds the machine's image (a few minutes).")
	fmt.Println("Details and timings: " + logPath)
	fmt.Println()
	start := time.Now()
	w, err := e2e.Setup(ctx, repo, dir, leg, say, log)
	if err != nil {
		return err
	}
	defer w.Close()
	say.Logf("The computer runs Tails from its USB stick; the Persistent Storage is unlocked and holds mail, keys, documents and photos. (Ready after %s.)", time.Since(start).Round(time.Second))
	steps := []struct {
		title string
		fn    func(context.Context) error
	}{
		{"", w.StartAgent},
		{"1. Making a backup Tails", w.ScenarioCreate},
		{"2. If your stick dies: the backup boots", w.ScenarioBackupBoots},
		// A new backup is updated without its passphrase (the key kept in this Tails); the
		// scenarios below show the passphrase dialog, as the e2e suite's do after key-slot-off.
		{"", w.KeySlotOff},
		{"3. Keeping it fresh: plug it in", w.ScenarioUpdate},
		{"4. Pulling the stick out during an update", w.ScenarioPull},
	}
	for _, s := range steps {
		if s.title != "" {
			fmt.Printf("\n== %s\n", s.title)
		}
		if err := s.fn(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("\nDone in %s. Log: %s\n", time.Since(start).Round(time.Second), logPath)
	return nil
}
