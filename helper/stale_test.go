//go:build linux

package helper

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"tails-backup/internal/dmcrypt/dmcrypttest"
	"tails-backup/udisks/udiskstest"
	"tails-backup/wire"
)

// TestLockBackupRemovesWhatAPullLeft: lock-backup of a locked backup removes the crypt mapping
// of its LUKS UUID that a pull left (its backing device gone), its mount detached first, and
// leaves alone a mapping whose stick is there, and those of other devices.
func TestLockBackupRemovesWhatAPullLeft(t *testing.T) {
	stale := "luks-" + dstUUID
	for _, tc := range []struct {
		name string
		devs []dmcrypttest.Dev
		gone []string
		want []string // commands run, program names alone
	}{
		{"left by a pull", []dmcrypttest.Dev{{Name: "dm-7", DMName: stale, DMUUID: dmcrypttest.CryptUUID(dstUUID, stale), Number: "254:7", Slaves: []string{"sda2"}}},
			[]string{"sda2"}, []string{"umount --lazy /media/amnesia/TailsData", "cryptsetup close " + stale}},
		{"its stick is there", []dmcrypttest.Dev{{Name: "dm-7", DMName: stale, DMUUID: dmcrypttest.CryptUUID(dstUUID, stale), Number: "254:7", Slaves: []string{"sda2"}}},
			nil, nil},
		{"another device's", []dmcrypttest.Dev{{Name: "dm-7", DMName: "luks-" + srcUUID, DMUUID: dmcrypttest.CryptUUID(srcUUID, "luks-"+srcUUID), Number: "254:7", Slaves: []string{"sda2"}}},
			[]string{"sda2"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, worldOpts{backup: func(spec *udiskstest.StickSpec) { spec.MountedAt, spec.Unlocked = "", false }})
			w.sys.Sysfs = dmcrypttest.Sysfs(t, tc.devs, tc.gone...)
			// This process's mount table, plus the mount of the mapping that the pull left.
			mi, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			w.sys.MountInfo = filepath.Join(w.dir, "mountinfo")
			line := "9999 1 254:7 / /media/amnesia/TailsData rw,nosuid,nodev - ext4 /dev/mapper/" + stale + " rw\n"
			if err := os.WriteFile(w.sys.MountInfo, append(mi, line...), 0o644); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var ran []string
			w.sys.RunCommand = func(ctx context.Context, argv, env []string) ([]byte, error) {
				mu.Lock()
				defer mu.Unlock()
				ran = append(ran, strings.Join(append([]string{filepath.Base(argv[0])}, argv[1:]...), " "))
				return nil, nil
			}
			evs, err := w.do(wire.OpLockBackup, dstUUID)
			checkEnd(t, evs, err, wire.EventDone)
			if !slices.Equal(ran, tc.want) {
				t.Errorf("ran %q, want %q", ran, tc.want)
			}
			if calls := w.fake.Calls(); len(calls) != 0 {
				t.Errorf("udisks calls %v, want none (the backup is locked)", calls)
			}
		})
	}
}
