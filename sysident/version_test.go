//go:build linux

package sysident

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadVersion(t *testing.T) {
	for _, tc := range []struct {
		tree, want string
		files      []string
		wantErr    string
		noVersion  bool
	}{
		{tree: "disk-info", want: "Tails 6.10 - 20241203"},
		{tree: "crlf", want: "Tails 6.11 - 20250107"},
		{tree: "bom", want: "Tails 6.12"},
		{tree: "noeol", want: "Tails 7.0"},
		{tree: "empty", wantErr: "empty first line", noVersion: true},
		{tree: "control", wantErr: "control characters", noVersion: true},
		{tree: "none", wantErr: "looked for .disk/info", noVersion: true},
		{tree: "missing-root", wantErr: "no such file"},
		// Configurable candidates, in order: the first present one wins.
		{tree: "custom", files: []string{"etc/amnesia-version", "etc/version", ".disk/info"}, want: "6.10 - 20241203"},
		{tree: "custom", files: []string{".disk/info", "etc/version"}, want: "Debian GNU/Linux 12 Binary"},
		{tree: "none", files: []string{"live/Tails.module"}, want: "filesystem.squashfs"},
	} {
		t.Run(tc.tree+"/"+strings.Join(tc.files, ","), func(t *testing.T) {
			got, err := ReadVersionOpts(filepath.Join("testdata/version", tc.tree), Options{VersionFiles: tc.files})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want error containing %q", got, err, tc.wantErr)
				}
				if errors.Is(err, ErrNoVersion) != tc.noVersion {
					t.Errorf("errors.Is(%v, ErrNoVersion) = %v", err, !tc.noVersion)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestReadVersionBounded(t *testing.T) {
	root := t.TempDir()
	writeFile(t, root, ".disk/info", strings.Repeat("x", 10<<20))
	if _, err := ReadVersion(root); !errors.Is(err, ErrNoVersion) || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("10 MiB single line: %v", err)
	}
	writeFile(t, root, ".disk/info", strings.Repeat("x", 300)+"\n")
	if _, err := ReadVersion(root); !errors.Is(err, ErrNoVersion) {
		t.Fatalf("300-byte line: %v", err)
	}
}

// A hostile backup whose .disk/info is a symlink to a secret: the secret is never read.
func TestReadVersionRefusesSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeFile(t, outside, "secret", "root:hash:secret\n")
	writeFile(t, outside, "info", "Tails 9.9\n")
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, ".disk"), 0o755)
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, ".disk/info")); err != nil {
		t.Fatal(err)
	}
	v, err := ReadVersion(root)
	if err == nil || strings.Contains(err.Error(), "secret") || v != "" {
		t.Fatalf("symlinked file: got %q, %v", v, err)
	}
	root2 := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root2, ".disk")); err != nil {
		t.Fatal(err)
	}
	if v, err := ReadVersion(root2); err == nil {
		t.Fatalf("symlinked folder: got %q", v)
	}
}

func TestIdentitySeesIncrementalUpgrade(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, r := range []string{a, b} {
		writeFile(t, r, ".disk/info", "Tails 6.10\n")
		writeFile(t, r, "live/Tails.module", "filesystem.squashfs\n")
		writeFile(t, r, "live/filesystem.squashfs", "squash")
	}
	identities := func() (Identity, Identity) {
		t.Helper()
		aid, err := Identify(a, Options{})
		if err != nil {
			t.Fatal(err)
		}
		bid, err := Identify(b, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return aid, bid
	}
	if aid, bid := identities(); aid != bid {
		t.Fatalf("identical trees: %+v %+v", aid, bid)
	}
	// An IUK adds a delta and rewrites Tails.module, but leaves .disk/info alone.
	writeFile(t, a, "live/6.11.squashfs", "delta")
	writeFile(t, a, "live/Tails.module", "filesystem.squashfs\n6.11.squashfs\n")
	if aid, bid := identities(); aid.Digest == bid.Digest || aid.Version != bid.Version {
		t.Fatalf("after IUK: %+v %+v", aid, bid)
	}
	// A full upgrade with an identical version line still changes the image size.
	writeFile(t, a, "live/Tails.module", "filesystem.squashfs\n")
	os.Remove(filepath.Join(a, "live/6.11.squashfs"))
	writeFile(t, a, "live/filesystem.squashfs", "squash2")
	if aid, bid := identities(); aid.Digest == bid.Digest {
		t.Fatal("a different system image size must differ")
	}
}
