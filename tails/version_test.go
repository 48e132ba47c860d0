package tails

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadVersion(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
		err                 bool
	}{
		{name: "Tails", content: "6.10 - 20241203\nmore\n", want: "6.10 - 20241203"},
		{name: "no newline", content: "7.2", want: "7.2"},
		{name: "spaces", content: "  7.2 - 20251107  \r\n", want: "7.2 - 20251107"},
		{name: "empty", content: "", err: true},
		{name: "empty first line", content: "\n7.2\n", err: true},
		{name: "missing", err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "version")
			if tc.name != "missing" {
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ReadVersion(path)
			if got != tc.want || (err != nil) != tc.err {
				t.Errorf("ReadVersion = %q, %v; want %q, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}
