package session

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/godbus/dbus/v5"

	"tails-backup/l10n"
	"tails-backup/udisks"
	"tails-backup/udisks/udiskstest"
)

const (
	bootUUID   = "0b5c1c5e-7a4f-4d69-9f55-3ad1d1f4e7a2"
	backupUUID = "2f1e3c4d-0000-4000-8000-00000000b0b0"
	strayUUID  = "9a9a9a9a-0000-4000-8000-000000000bad"
	plainUUID  = "5e5e5e5e-0000-4000-8000-0000000000aa"
	fixedUUID  = "6f6f6f6f-0000-4000-8000-0000000000ff"
)

var testBoot = udisks.BootPaths{Persistence: "/live/persistence/TailsData_unlocked", System: "/lib/live/mount/medium"}

// sticksWorld is a fake udisks2 holding the boot stick (sda), a paired backup (sdb, upper-case
// UUID), another Tails stick (sdc), a Tails stick whose Persistent Storage is not LUKS (sdd), a
// Tails disk that is not removable (sde) and a plain USB stick (sdf); pick one with dev.
func sticksWorld(t *testing.T) *udisks.Snapshot {
	t.Helper()
	addr := udiskstest.StartBus(t)
	fake := udiskstest.NewService(t, addr)
	fake.AddStick(udiskstest.StickSpec{Name: "sda", Vendor: "SanDisk", Model: "Cruzer", Removable: true, ConnectionBus: "usb",
		Tails: true, Passphrase: "boot", HintSystem: true, LUKSUUID: bootUUID, MountedAt: testBoot.Persistence, SystemMountedAt: testBoot.System})
	fake.AddStick(udiskstest.StickSpec{Name: "sdb", Vendor: "Kingston", Model: "DataTraveler", Removable: true, ConnectionBus: "usb",
		Tails: true, Passphrase: "b", LUKSUUID: "2F1E3C4D-0000-4000-8000-00000000B0B0"})
	fake.AddStick(udiskstest.StickSpec{Name: "sdc", Vendor: "Generic", Model: "Flash  Disk", Size: 8_000_000_000, Removable: true, ConnectionBus: "usb",
		Tails: true, Passphrase: "c", LUKSUUID: strayUUID})
	plain := fake.AddStick(udiskstest.StickSpec{Name: "sdd", Vendor: "Plain", Model: "Stick", Removable: true, ConnectionBus: "usb",
		Tails: true, Passphrase: "d", LUKSUUID: plainUUID})
	fake.Set(plain.LUKS, "org.freedesktop.UDisks2.Block", "IdType", "ext4")
	fake.AddStick(udiskstest.StickSpec{Name: "sde", Vendor: "ATA", Model: "Disk", Removable: false, ConnectionBus: "sata",
		Tails: true, Passphrase: "e", LUKSUUID: fixedUUID})
	fake.AddStick(udiskstest.StickSpec{Name: "sdf", Vendor: "", Model: "", Removable: true, ConnectionBus: "usb"})
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	snap, err := udisks.New(conn, udisks.Options{Boot: testBoot}).GetSnapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func stickOn(t *testing.T, snap *udisks.Snapshot, dev string) udisks.Stick {
	t.Helper()
	o := snap.ByDevice(dev)
	if o == nil {
		t.Fatalf("no %s", dev)
	}
	st, ok := snap.StickOf(o.Path, testBoot)
	if !ok {
		t.Fatalf("%s is not a Tails stick", dev)
	}
	return st
}

func TestSticks(t *testing.T) {
	snap := sticksWorld(t)
	paired := func(uuid string) bool { return uuid == backupUUID }

	t.Run("fitness, kind and names", func(t *testing.T) {
		kinds := map[string]Kind{}
		for _, c := range Classify(snap, testBoot, paired) {
			kinds[Device(c.Stick.Stick)] = c.Kind
		}
		for _, tc := range []struct {
			dev      string
			unfit    Unfit
			kind     Kind
			name     string
			describe string
		}{
			{"/dev/sda", UnfitBoot, Ignored, "SanDisk Cruzer, 17.2 GB", "SanDisk Cruzer (17.2 GB, /dev/sda)"},
			{"/dev/sdb", Fit, Paired, "Kingston DataTraveler, 17.2 GB", "Kingston DataTraveler (17.2 GB, /dev/sdb)"},
			{"/dev/sdc", Fit, Unpaired, "Generic Flash Disk, 8.0 GB", "Generic Flash Disk (8.0 GB, /dev/sdc)"},
			{"/dev/sdd", UnfitNoLUKS, Ignored, "Plain Stick, 17.2 GB", "Plain Stick (17.2 GB, /dev/sdd)"},
			{"/dev/sde", UnfitNotRemovable, Ignored, "ATA Disk, 17.2 GB", "ATA Disk (17.2 GB, /dev/sde)"},
		} {
			st := stickOn(t, snap, tc.dev)
			if got := Fitness(st); got != tc.unfit {
				t.Errorf("%s: Fitness = %d, want %d", tc.dev, got, tc.unfit)
			}
			if got, ok := kinds[tc.dev]; !ok || got != tc.kind {
				t.Errorf("%s: Classify kind = %d (listed %v), want %d", tc.dev, got, ok, tc.kind)
			}
			if got := NameIn(nil, st); got != tc.name {
				t.Errorf("%s: Name = %q, want %q", tc.dev, got, tc.name)
			}
			if got := DescribeIn(nil, st); got != tc.describe {
				t.Errorf("%s: Describe = %q, want %q", tc.dev, got, tc.describe)
			}
		}
		if len(kinds) != 5 {
			t.Errorf("Classify listed %v, want the five Tails sticks", kinds)
		}
	})

	t.Run("uuids", func(t *testing.T) {
		if got := SourceUUID(snap, testBoot); got != bootUUID {
			t.Errorf("SourceUUID = %q", got)
		}
		if got := BootUUID(snap, testBoot); got != bootUUID {
			t.Errorf("BootUUID = %q", got)
		}
		var devs []string
		for _, c := range Candidates(snap, testBoot) {
			devs = append(devs, Device(c.Stick)+" "+c.UUID)
		}
		slices.Sort(devs)
		want := []string{"/dev/sdb " + backupUUID, "/dev/sdc " + strayUUID}
		if len(devs) != 2 || devs[0] != want[0] || devs[1] != want[1] {
			t.Errorf("Candidates = %q, want %q", devs, want)
		}
	})

	t.Run("pick", func(t *testing.T) {
		all := Candidates(snap, testBoot)
		slices.SortFunc(all, func(a, b Stick) int { return strings.Compare(Device(a.Stick), Device(b.Stick)) })
		for _, tc := range []struct {
			name  string
			cands []Stick
			dev   string
			want  string // the device picked
			err   *PickError
		}{
			{"only one", all[:1], "", "/dev/sdb", nil},
			{"none", nil, "", "", &PickError{Reason: PickNone}},
			{"several", all, "", "", &PickError{Reason: PickSeveral, Count: 2}},
			{"by name", all, "sdc", "/dev/sdc", nil},
			{"by path, not a candidate", all[:1], "/dev/sdc", "/dev/sdc", nil},
			{"by partition", all, "/dev/sdb2", "/dev/sdb", nil},
			{"no such device", all, "sdz", "", &PickError{Reason: PickNoDevice, Device: "/dev/sdz"}},
			{"not Tails", all, "sdf", "", &PickError{Reason: PickNotTails, Device: "/dev/sdf"}},
			{"boot", all, "sda", "", &PickError{Reason: PickUnfit, Device: "/dev/sda", Unfit: UnfitBoot}},
			{"not removable", all, "sde", "", &PickError{Reason: PickUnfit, Device: "/dev/sde", Unfit: UnfitNotRemovable}},
			{"no LUKS", all, "sdd", "", &PickError{Reason: PickUnfit, Device: "/dev/sdd", Unfit: UnfitNoLUKS}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st, err := PickStick(snap, testBoot, tc.cands, tc.dev)
				if tc.err == nil {
					if err != nil || Device(st.Stick) != tc.want || st.UUID == "" {
						t.Fatalf("PickStick = %q %q, %v; want %s", Device(st.Stick), st.UUID, err, tc.want)
					}
					return
				}
				var pe *PickError
				if !errors.As(err, &pe) || *pe != *tc.err {
					t.Fatalf("PickStick error = %#v, want %#v", err, tc.err)
				}
			})
		}
	})
}

func TestSizeText(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{1, "1 byte"}, {999, "999 bytes"}, {1000, "1.0 kB"}, {16 << 30, "17.2 GB"}, {15_500_000_000, "15.5 GB"},
	} {
		if got := l10n.English().Size(tc.n); got != tc.want {
			t.Errorf("Size(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
