package session

import (
	"testing"
	"time"

	"tails-backup/pairing"
)

func TestCreateTargets(t *testing.T) {
	snap := sticksWorld(t)
	var st pairing.State
	if err := st.Pair(pairing.PairedBackup{UUID: backupUUID, Label: "Kingston DataTraveler", Added: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	type row struct{ reason, paired, what string }
	want := map[string]row{
		"/dev/sda": {"it is the stick this Tails is running from", "", ""},
		"/dev/sdb": {"", backupUUID, "your backup Tails"},
		"/dev/sdc": {"", "", "a Tails stick"},
		"/dev/sdd": {"", "", "a Tails stick"},
		"/dev/sde": {"it is an internal disk, not a removable USB stick", "", "a Tails stick"},
		"/dev/sdf": {"", "", ""},
	}
	targets := CreateTargetsIn(nil, snap, testBoot, 1<<30, &st)
	if len(targets) != len(want) {
		t.Fatalf("%d targets, want %d", len(targets), len(want))
	}
	seenUnfit := false
	for _, c := range targets {
		dev := Device(c.Stick)
		got := row{c.Reason, c.PairedUUID, c.What}
		if got != want[dev] {
			t.Errorf("%s: %+v, want %+v", dev, got, want[dev])
		}
		if c.Reason != "" {
			seenUnfit = true
		} else if seenUnfit {
			t.Errorf("%s can be used but is listed after one that cannot", dev)
		}
	}
}
