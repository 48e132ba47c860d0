package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMirrorIn(t *testing.T) {
	tests := []struct {
		name, file, content, want string
	}{
		{"deb822", "debian.sources", `Types: deb
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.example.org/debian-security
Suites: bookworm-security
Components: main
`, "http://deb.example.org/debian"},
		{"deb822 security first", "debian.sources", `Types: deb
URIs: http://deb.example.org/debian-security/
Suites: bookworm-security

Types: deb deb-src
URIs: https://mirror.example.net/debian/
Suites: bookworm
`, "https://mirror.example.net/debian"},
		{"deb822 source only", "src.sources", "Types: deb-src\nURIs: http://deb.example.org/debian\nSuites: bookworm\n", ""},
		{"one-line", "sources.list", "# comment\ndeb-src http://a.example/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://b.example/debian/ bookworm main\n", "http://b.example/debian"},
		{"one-line trixie", "sources.list", "deb http://b.example/debian trixie main\n", "http://b.example/debian"},
		{"one-line other suite", "sources.list", "deb http://b.example/debian sid main\ndeb http://c.example/debian bookworm-backports main\n", ""},
		{"not debian", "x.list", "deb https://packages.example.com/apt cloud-sdk-bookworm main\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), tt.file)
			if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := mirrorIn(p); got != tt.want {
				t.Errorf("mirrorIn = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLegFromEnv(t *testing.T) {
	tests := []struct {
		env, suite string
		tails      int
		wantErr    bool
	}{
		{"", "trixie", 7, false},
		{"trixie", "trixie", 7, false},
		{"bookworm", "bookworm", 6, false},
		{"sid", "", 0, true},
		{"Trixie", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv("E2E_DEBIAN", tt.env)
			leg, err := LegFromEnv()
			if (err != nil) != tt.wantErr || leg.Suite != tt.suite || leg.Tails != tt.tails {
				t.Fatalf("LegFromEnv() = %+v, %v; want suite %q, Tails %d, error %v", leg, err, tt.suite, tt.tails, tt.wantErr)
			}
			if err == nil && (!strings.HasPrefix(leg.Version, strconv.Itoa(leg.Tails)+".") || !strings.HasPrefix(leg.Next, strconv.Itoa(leg.Tails)+".")) {
				t.Errorf("leg %s plays Tails %d but its versions are %q and %q", leg.Suite, leg.Tails, leg.Version, leg.Next)
			}
		})
	}
}
