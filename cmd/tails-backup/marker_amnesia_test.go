//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"tails-backup/session"
	"tails-backup/tails"
	"tails-backup/tails/tailstest"
)

// The session commands run as amnesia, and this Tails' Persistent Storage root (or that of a
// stick create replaces) is as Tails makes it: root:root, mode 0770, ACL user:amnesia:--x.
// amnesia may reach the marker by its name but may not open the root for reading, so the
// commands must read the marker without doing so. The tests run as root, which reads
// anything: the read runs in a copy of this test binary started as amnesia.

// markerRootEnv names, for the helper test run as amnesia, the root to read the marker of.
const markerRootEnv = "TB_CMD_MARKER_ROOT"

func TestReadOwnMarkerAsAmnesia(t *testing.T) {
	m := tails.Marker{Format: tails.MarkerFormat, Source: mainUUID, State: tails.StateComplete,
		Started: testNow.Add(-time.Hour), Finished: testNow}
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		marker []byte // nil: no marker
		want   string
	}{
		{"a backup Tails", b, "uid 1000: present true, backup true, source " + mainUUID + ", error <nil>"},
		{"a damaged marker", []byte("{not json"), "uid 1000: present true, backup false, source , error the backup marker is not valid JSON"},
		{"no marker", nil, "uid 1000: present false, backup false, source , error <nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, bin := tailstest.PersistenceRoot(t, tt.marker)
			if got := tailstest.RunAsAmnesia(t, bin, "TestHelperReadOwnMarkerAsAmnesia", markerRootEnv+"="+root); !strings.HasPrefix(got, tt.want) {
				t.Errorf("readOwnMarker as amnesia: %q, want %q...", got, tt.want)
			}
		})
	}
}

// TestHelperReadOwnMarkerAsAmnesia is the part of TestReadOwnMarkerAsAmnesia that runs as
// amnesia; it does nothing in a normal run.
func TestHelperReadOwnMarkerAsAmnesia(t *testing.T) {
	root := os.Getenv(markerRootEnv)
	if root == "" {
		return
	}
	m := session.ReadOwnMarker(root)
	fmt.Printf("RESULT uid %d: present %v, backup %v, source %s, error %v\n", os.Getuid(), m.Present, m.IsBackup(), m.Marker.Source, m.Err)
}
