//go:build linux

package agent

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"tails-backup/tails"
	"tails-backup/tails/tailstest"
)

// The agent runs as amnesia, and a backup's Persistent Storage root, once updated, is as Tails
// makes it: root:root, mode 0770, ACL user:amnesia:--x. amnesia may reach the marker by its
// name but may not open the root for reading, so the agent must read the marker without doing
// so. The tests run as root, which reads anything: the read runs in a copy of this test binary
// started as amnesia.

// markerRootEnv names, for the helper test run as amnesia, the root to read the marker of.
const markerRootEnv = "TB_AGENT_MARKER_ROOT"

func TestReadMarkerFileAsAmnesia(t *testing.T) {
	m := tails.Marker{Format: tails.MarkerFormat, Source: "0b5c1c5e-7a4f-4d69-9f55-3ad1d1f4e7a2", State: tails.StateComplete,
		Started: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), Finished: time.Date(2026, 11, 1, 10, 5, 0, 0, time.UTC)}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		marker []byte // nil: no marker
		want   string
	}{
		{"a backup", b, "uid 1000: source " + m.Source},
		{"no marker", nil, "uid 1000: error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, bin := tailstest.PersistenceRoot(t, tt.marker)
			if got := tailstest.RunAsAmnesia(t, bin, "TestHelperReadMarkerFileAsAmnesia", markerRootEnv+"="+root); !strings.HasPrefix(got, tt.want) {
				t.Errorf("readMarkerFile as amnesia: %q, want %q...", got, tt.want)
			}
		})
	}
}

// TestHelperReadMarkerFileAsAmnesia is the part of TestReadMarkerFileAsAmnesia that runs as
// amnesia; it does nothing in a normal run.
func TestHelperReadMarkerFileAsAmnesia(t *testing.T) {
	root := os.Getenv(markerRootEnv)
	if root == "" {
		return
	}
	m, err := readMarkerFile(root)
	if err != nil {
		fmt.Printf("RESULT uid %d: error %v\n", os.Getuid(), err)
		return
	}
	fmt.Printf("RESULT uid %d: source %s\n", os.Getuid(), m.Source)
}
