//go:build linux

package helper

import (
	"context"
	"fmt"
	"strings"
	"testing"

	tbsync "tails-backup/sync"
)

// TestLimitFailures: a tree beyond the mirror's bounds is refused with one sentence that names
// the stick or this Tails, what is wrong and where (control characters of the path replaced),
// for an update (the source is this Tails) and for a restore (the source is the backup).
func TestLimitFailures(t *testing.T) {
	o := &operation{ctx: context.Background(), sys: System{}.withDefaults()}
	backup, ps := &root{name: "the stick X"}, &root{name: "this Tails"}
	limit := func(path string, inDst bool) error {
		return fmt.Errorf("mirror: %w", &tbsync.LimitError{Path: path, What: tbsync.LimitDepth, Limit: 256, InDestination: inDst})
	}
	tests := []struct {
		name string
		f    *Failure
		want []string
	}{
		{"update, this Tails' tree", o.mirrorFailure(limit("Persistent/a\nb", false), backup),
			[]string{"Your Persistent Storage holds a folder nested too deeply (Persistent/a b)", "update again"}},
		{"update, the backup's tree", o.mirrorFailure(limit("old/x", true), backup),
			[]string{"The backup on the stick X holds a folder nested too deeply (old/x)", "tails-backup create"}},
		{"restore, the backup's tree", o.restoreFailure(limit("Persistent/x", false), ps, backup),
			[]string{"The backup on the stick X holds a folder nested too deeply (Persistent/x)", "another backup"}},
		{"restore, this Tails' tree", o.restoreFailure(limit("Persistent/x", true), ps, backup),
			[]string{"The Persistent Storage of this Tails holds a folder nested too deeply (Persistent/x)", "restore again"}},
	}
	for _, tt := range tests {
		if tt.f.Code != CodeRefused {
			t.Errorf("%s: code %s, want %s", tt.name, tt.f.Code, CodeRefused)
		}
		for _, w := range tt.want {
			if !strings.Contains(tt.f.Message, w) {
				t.Errorf("%s: message %q lacks %q", tt.name, tt.f.Message, w)
			}
		}
		if strings.Count(tt.f.Message, ". ") > 0 || !strings.HasSuffix(tt.f.Message, ".") {
			t.Errorf("%s: message %q is not one sentence", tt.name, tt.f.Message)
		}
	}
}
