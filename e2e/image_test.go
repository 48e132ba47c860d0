package e2e

import (
	"os"
	"path/filepath"
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
		{"one-line other suite", "sources.list", "deb http://b.example/debian trixie main\n", ""},
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
