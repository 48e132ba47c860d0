package dmcrypt_test

import (
	"os"
	"reflect"
	"testing"

	"tails-backup/internal/dmcrypt"
	"tails-backup/internal/dmcrypt/dmcrypttest"
)

type dev = dmcrypttest.Dev

func mk(name, dmName, dmUUID, number string, slaves ...string) dev {
	return dev{Name: name, DMName: dmName, DMUUID: dmUUID, Number: number, Slaves: slaves}
}

const uuid = "3f2a1b4c-5d6e-4f70-8192-a3b4c5d6e7f8"

func TestOf(t *testing.T) {
	luksName := "luks-" + uuid
	dmUUID := dmcrypttest.CryptUUID(uuid, luksName)
	own := mk("dm-0", "TailsData_unlocked", "CRYPT-LUKS2-00000000000000000000000000000000-TailsData_unlocked", "254:0", "sdb2")
	for _, tc := range []struct {
		name string
		devs []dev
		gone []string
		want []dmcrypt.Mapping
	}{
		{"none", []dev{own}, nil, nil},
		{"live", []dev{own, mk("dm-1", luksName, dmUUID, "254:1", "sda2")}, nil,
			[]dmcrypt.Mapping{{Name: luksName, Device: "/dev/dm-1", Major: 254, Minor: 1}}},
		{"backing device pulled", []dev{own, mk("dm-1", luksName, dmUUID, "254:1", "sda2")}, []string{"sda2"},
			[]dmcrypt.Mapping{{Name: luksName, Device: "/dev/dm-1", Major: 254, Minor: 1, Stale: true}}},
		{"no slave left", []dev{own, mk("dm-3", luksName, dmUUID, "254:3")}, nil,
			[]dmcrypt.Mapping{{Name: luksName, Device: "/dev/dm-3", Major: 254, Minor: 3, Stale: true}}},
		{"LUKS1, another name", []dev{mk("dm-2", "e2e-ps", "CRYPT-LUKS1-3f2a1b4c5d6e4f708192a3b4c5d6e7f8-e2e-ps", "254:2", "sda2")}, nil,
			[]dmcrypt.Mapping{{Name: "e2e-ps", Device: "/dev/dm-2", Major: 254, Minor: 2}}},
		{"other UUID", []dev{mk("dm-1", "luks-x", "CRYPT-LUKS2-3f2a1b4c5d6e4f708192a3b4c5d6e7f9-luks-x", "254:1")}, nil, nil},
		{"not crypt", []dev{mk("dm-1", "vg-lv", "LVM-3f2a1b4c5d6e4f708192a3b4c5d6e7f8", "254:1")}, nil, nil},
		{"plain dm-crypt", []dev{mk("dm-1", "swap", "CRYPT-PLAIN-3f2a1b4c5d6e4f708192a3b4c5d6e7f8-swap", "254:1")}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := dmcrypt.Of(dmcrypttest.Sysfs(t, tc.devs, tc.gone...), uuid)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Of = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestOfRefusesNoUUID(t *testing.T) {
	for _, u := range []string{"", "-", "../x"} {
		if _, err := dmcrypt.Of(t.TempDir(), u); err == nil {
			t.Errorf("Of(%q) did not fail", u)
		}
	}
}

// The real sysfs of this computer: whatever its mappings, reading them works.
func TestOfRealSysfs(t *testing.T) {
	if _, err := os.Stat("/sys/block"); err != nil {
		t.Skip("no sysfs")
	}
	if _, err := dmcrypt.Of("", uuid); err != nil {
		t.Fatal(err)
	}
}
