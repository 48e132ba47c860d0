package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"tails-backup/sync/internal/treegen"
	"tails-backup/sync/internal/treegen/ext4img"
)

// demo is one run of the demonstration; failures counts the checks that did not hold.
type demo struct {
	bin      string
	out      io.Writer
	tmp      string
	main     *ext4img.Image
	backup   *ext4img.Image
	failures int
	summary  []string
}

// stickSize fits the ~50 MiB sample; the sparse 256 MiB VM image only takes its data extents.
const stickSize = 512 << 20

func (d *demo) section(n int, title string) {
	fmt.Fprintf(d.out, "\n== %d. %s ==\n\n", n, title)
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

func (d *demo) run(ctx context.Context) (err error) {
	bin, err := filepath.Abs(d.bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("the tails-backup binary: %w (build it with: go build -o bin/tails-backup ./cmd/tails-backup)", err)
	}
	d.bin = bin
	defer func() { err = errors.Join(err, d.cleanup()) }()

	if err := d.makeSticks(ctx); err != nil {
		return err
	}
	if err := d.fillMain(); err != nil {
		return err
	}
	if err := d.backupAndCheck(ctx, 3, "Full backup onto the empty backup stick", "full backup"); err != nil {
		return err
	}
	d.spotChecks(d.fullBackupChecks())
	if err := d.weekOfUse(); err != nil {
		return err
	}
	d.section(6, "What the update will change (dry run, writes nothing)")
	if _, err := d.tailsBackup(ctx, "sync", "--dry-run", d.main.MountPoint, d.backup.MountPoint); err != nil {
		return err
	}
	if err := d.backupAndCheck(ctx, 7, "Incremental update of the backup", "update after a week"); err != nil {
		return err
	}
	d.spotChecks(d.updateChecks())
	d.section(9, "Summary")
	for _, s := range d.summary {
		d.printf("  %s\n", s)
	}
	return nil
}

// makeSticks creates the two file systems, labelled TailsData like Tails' Persistent Storage.
func (d *demo) makeSticks(ctx context.Context) error {
	d.section(1, "Two Tails sticks")
	tmp, err := os.MkdirTemp("", "tails-backup-demo-")
	if err != nil {
		return err
	}
	d.tmp = tmp
	d.main, err = ext4img.Create(ctx, filepath.Join(tmp, "main.img"), filepath.Join(tmp, "main-TailsData"), "TailsData", stickSize, 0)
	if err != nil {
		return fmt.Errorf("main stick: %w", err)
	}
	d.backup, err = ext4img.Create(ctx, filepath.Join(tmp, "backup.img"), filepath.Join(tmp, "backup-TailsData"), "TailsData", stickSize, 0)
	if err != nil {
		return fmt.Errorf("backup stick: %w", err)
	}
	d.printf("Two ext4 file systems (label TailsData, %d MiB, in image files, loop-mounted with acl,user_xattr)\n", stickSize>>20)
	d.printf("stand for the unlocked Persistent Storage of each stick:\n")
	d.printf("  main Tails    %s   (on Tails: /live/persistence/TailsData_unlocked)\n", d.main.MountPoint)
	d.printf("  backup stick  %s\n", d.backup.MountPoint)
	return nil
}

// fillMain writes the Tails sample into the main stick and shows its top level.
func (d *demo) fillMain() error {
	d.section(2, "The main Tails' Persistent Storage")
	if err := treegen.TailsSample(d.main.MountPoint); err != nil {
		return err
	}
	used, _ := d.main.Used()
	d.printf("A realistic Persistent Storage (%.1f MiB used): Persistent, thunderbird, gnupg, dotfiles, Wi-Fi\n", float64(used)/(1<<20))
	d.printf("connections, apt caches... with Tails' owners, modes, ACL, a hard link, a symlink, a sparse VM disk.\n\n")
	if err := listTop(d.out, d.main.MountPoint); err != nil {
		return err
	}
	conf, err := os.ReadFile(filepath.Join(d.main.MountPoint, "persistence.conf"))
	if err != nil {
		return err
	}
	d.printf("\npersistence.conf:\n%s", indent(strings.ReplaceAll(string(conf), "\t", "  →  ")))
	return nil
}

// backupAndCheck runs the mirror with a progress display, then rsync's independent comparison.
func (d *demo) backupAndCheck(ctx context.Context, n int, title, what string) error {
	d.section(n, title)
	start := time.Now()
	report, err := d.tailsBackup(ctx, "sync", "--progress", d.main.MountPoint, d.backup.MountPoint)
	took := time.Since(start)
	if err != nil {
		d.failures++
		d.summary = append(d.summary, fmt.Sprintf("✗ %s: tails-backup failed: %v", what, err))
		return err
	}
	d.section(n+1, "Independent check: is the backup an exact copy?")
	same, err := d.oracle(ctx)
	if err != nil {
		return err
	}
	mark := "✓ identical (rsync --checksum)"
	if !same {
		mark = "✗ NOT identical"
	}
	d.summary = append(d.summary, fmt.Sprintf("%-21s %5.2fs  %s\n%25s%s", what+":", took.Seconds(), mark, "", strings.TrimSpace(report)))
	return nil
}

// tailsBackup runs the CLI in front of the user and returns its last line of standard output
// (the report).
func (d *demo) tailsBackup(ctx context.Context, args ...string) (string, error) {
	d.printf("$ %s %s\n", "tails-backup", strings.Join(args, " "))
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, d.bin, args...)
	cmd.Stdout = io.MultiWriter(d.out, &stdout)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("tails-backup %s: %w", args[0], err)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	return lines[len(lines)-1], nil
}

// oracle asks rsync, comparing contents, what it would still change on the backup.
func (d *demo) oracle(ctx context.Context) (bool, error) {
	args := []string{"-aHAXS", "--numeric-ids", "--delete", "-n", "-i", "--checksum",
		d.main.MountPoint + "/", d.backup.MountPoint + "/"}
	d.printf("$ rsync %s\n", strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, "rsync", args...).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("rsync check: %w: %s", err, out)
	}
	if len(bytes.TrimSpace(out)) == 0 {
		d.printf("(no output: rsync finds nothing to change, in data, owners, modes, ACLs, xattrs, hard links or mtimes)\n")
		d.printf("✓ the backup is an exact copy\n")
		return true, nil
	}
	d.failures++
	d.printf("%s✗ the backup DIFFERS from the main Tails (lines above: what rsync would still change)\n", indent(string(out)))
	return false, nil
}

// weekOfUse changes the main Tails as a week of use would, and says what changed.
func (d *demo) weekOfUse() error {
	d.section(5, "A week of use on the main Tails")
	changes, err := treegen.TailsWeekOfUse(d.main.MountPoint, time.Now())
	for _, c := range changes {
		d.printf("  • %-62s %s\n", c.Path, c.What)
	}
	return err
}

func (d *demo) cleanup() error {
	var errs []error
	for _, im := range []*ext4img.Image{d.main, d.backup} {
		if im != nil {
			errs = append(errs, im.Remove())
		}
	}
	err := errors.Join(errs...)
	if err == nil && d.tmp != "" {
		err = os.RemoveAll(d.tmp)
	}
	if d.tmp != "" {
		if err != nil {
			fmt.Fprintf(os.Stderr, "clean-up of %s incomplete: %v\n", d.tmp, err)
		} else {
			d.printf("\n(clean-up: both file systems unmounted, loop devices detached, %s removed)\n", d.tmp)
		}
	}
	return err
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
