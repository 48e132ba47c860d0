package aptmirror

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

func TestPick(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"debian 12", "http://deb.debian.org/debian/ bookworm\nhttp://deb.debian.org/debian/ bookworm-updates\nhttp://deb.debian.org/debian-security/ bookworm-security\n", "http://deb.debian.org/debian"},
		{"security first", "http://deb.example.org/debian-security/ bookworm-security\nhttps://mirror.example.net/debian/ trixie\n", "https://mirror.example.net/debian"},
		{"updates only", "http://deb.example.org/debian/ bookworm-updates\nhttp://deb.example.org/debian/ bookworm-backports\n", ""},
		{"not debian", "https://packages.example.com/apt/ cloud-sdk\n", ""},
		{"a file source", "file:/srv/debian/ bookworm\n", ""},
		{"nothing", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pick(tt.in); got != tt.want {
				t.Errorf("pick(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestDebian reads this machine's own apt configuration: every machine the tests build a
// Debian root on has one.
func TestDebian(t *testing.T) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("no apt-get: not a Debian machine")
	}
	got, err := Debian(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "http") || strings.HasSuffix(got, "/") {
		t.Errorf("Debian() = %q, want an http(s) address without a trailing slash", got)
	}
}
