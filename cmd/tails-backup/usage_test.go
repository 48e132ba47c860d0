package main

import (
	"regexp"
	"strings"
	"testing"
)

// TestEveryCommandHelp: `tails-backup CMD --help` is a short human text (what the command
// does, its options) on standard output, the same as `tails-backup help CMD`; an unknown option
// is one error line and a hint, exit status 2.
func TestEveryCommandHelp(t *testing.T) {
	for name := range commands() {
		t.Run(name, func(t *testing.T) {
			if name == "helper" {
				code, stdout, stderr := runCLI(t, "help", "helper")
				if code != 0 || !strings.Contains(stdout, "not meant to be run by hand") || stderr != "" {
					t.Errorf("help helper: exit %d, stdout %q, stderr %q", code, stdout, stderr)
				}
				return
			}
			code, stdout, stderr := runCLI(t, name, "--help")
			if code != 0 || stderr != "" {
				t.Errorf("--help: exit %d, stderr %q", code, stderr)
			}
			if !strings.HasPrefix(stdout, "usage: tails-backup "+name) {
				t.Errorf("--help does not start with the usage line: %q", stdout)
			}
			for _, bad := range []string{"Usage of", ".go", "STRING", "VALUE"} {
				if strings.Contains(stdout, bad) {
					t.Errorf("--help shows %q: %q", bad, stdout)
				}
			}
			if regexp.MustCompile(`\n  -[a-z]`).MatchString(stdout) {
				t.Errorf("--help shows Go's -option list: %q", stdout)
			}
			if !strings.Contains(stdout, "\noptions:\n  --") {
				t.Errorf("--help lists no options: %q", stdout)
			}
			code2, stdout2, _ := runCLI(t, "help", name)
			if code2 != 0 || stdout2 != stdout {
				t.Errorf("help %s: exit %d, %q; want what --help prints", name, code2, stdout2)
			}

			code, stdout, stderr = runCLI(t, name, "--no-such-option")
			want := "tails-backup " + name + ": unknown option --no-such-option\nrun 'tails-backup " + name + " --help' to see how to use it\n"
			if code != 2 || stdout != "" || stderr != want {
				t.Errorf("--no-such-option: exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout, stderr, want)
			}
		})
	}
}
