//go:build linux

package tails_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
	"tails-backup/tails/tailstest"
)

// amnesiaTestMarker is a complete backup marker.
var amnesiaTestMarker = tails.Marker{Format: tails.MarkerFormat, Source: "0b5c1c5e-7a4f-4d69-9f55-3ad1d1f4e7a2",
	State: tails.StateComplete, Started: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
	Finished: time.Date(2026, 11, 1, 10, 5, 0, 0, time.UTC), TailsVersion: "6.10"}

// The session (amnesia) reads markers, and a Persistent Storage root is as Tails makes it:
// root:root, mode 0770, ACL user:amnesia:--x. amnesia may reach the marker by its name but may
// not open the root for reading. The tests run as root, which reads anything: the read runs
// in a copy of this test binary started as amnesia.

// markerRootEnv names, for the helper test run as amnesia, the root to read the marker of.
const markerRootEnv = "TB_TAILS_MARKER_ROOT"

// TestReadMarkerInAsAmnesia: amnesia reads the marker of a Tails root, which it cannot open
// for reading (checked too: without that, the test would prove nothing).
func TestReadMarkerInAsAmnesia(t *testing.T) {
	valid, err := amnesiaTestMarker.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		marker []byte // nil: no marker
		want   string
	}{
		{"a marker", valid, "uid 1000; open for reading: permission denied; marker: present true, source " + amnesiaTestMarker.Source + ", error <nil>"},
		{"no marker", nil, "uid 1000; open for reading: permission denied; marker: present false, source , error <nil>"},
		{"a damaged marker", []byte("{not json"), "uid 1000; open for reading: permission denied; marker: present true, source , error the backup marker is not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, bin := tailstest.PersistenceRoot(t, tt.marker)
			if got := tailstest.RunAsAmnesia(t, bin, "TestHelperReadMarkerInAsAmnesia", markerRootEnv+"="+root); !strings.HasPrefix(got, tt.want) {
				t.Errorf("as amnesia:\n%q, want\n%q...", got, tt.want)
			}
		})
	}
}

// TestHelperReadMarkerInAsAmnesia is the part of TestReadMarkerInAsAmnesia that runs as
// amnesia; it does nothing in a normal run.
func TestHelperReadMarkerInAsAmnesia(t *testing.T) {
	root := os.Getenv(markerRootEnv)
	if root == "" {
		return
	}
	opened := "allowed"
	if fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		opened = err.Error()
	} else {
		unix.Close(fd)
	}
	m, present, err := tails.ReadMarkerIn(root)
	fmt.Printf("RESULT uid %d; open for reading: %s; marker: present %v, source %s, error %v\n", os.Getuid(), opened, present, m.Source, err)
}
