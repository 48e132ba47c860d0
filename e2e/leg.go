package e2e

import (
	"fmt"
	"os"
	"strings"
)

// Leg is the Tails release the guest plays: the Debian suite its image is built from and the
// Tails versions its simulated sticks carry. Tails 7 runs on Debian 13 "trixie" (udisks2 2.10,
// libblockdev 3, cryptsetup 2.7, Linux 6.12), Tails 6 on Debian 12 "bookworm" (udisks2 2.9,
// libblockdev 2, cryptsetup 2.6, Linux 6.1); the scenarios are the same on both, but for the
// three of the engine alone that run on Tails 7's only (TestE2E).
type Leg struct {
	// Suite is the Debian suite of the guest image.
	Suite string
	// Tails is the major version of Tails that the guest plays (7 or 6): it decides Tails'
	// own pieces in the image (udev rules, the ACL service, polkit, udisks2.conf).
	Tails int
	// Version is the running Tails' version ("7.5 - 20260224"), Next the version of the
	// upgrade that scenario 9 plays, Old the version of the stick that is never paired.
	Version, Next, Old string
}

// Legs are the Debian suites the e2e guest can be built from, the default first.
func legs() []Leg {
	return []Leg{
		{Suite: "trixie", Tails: 7, Version: "7.5 - 20260224", Next: "7.6 - 20260324", Old: "7.3 - 20251216"},
		{Suite: "bookworm", Tails: 6, Version: "6.10 - 20241203", Next: "6.11 - 20250107", Old: "6.8 - 20241001"},
	}
}

// LegFromEnv returns the leg that E2E_DEBIAN names (trixie, the default, or bookworm).
func LegFromEnv() (Leg, error) {
	suite := os.Getenv("E2E_DEBIAN")
	if suite == "" {
		return legs()[0], nil
	}
	for _, l := range legs() {
		if l.Suite == suite {
			return l, nil
		}
	}
	return Leg{}, fmt.Errorf("E2E_DEBIAN=%s is no Debian suite the guest can be built from: set it to trixie (Tails 7, the default) or bookworm (Tails 6)", suite)
}

// short is a version without its date ("7.5").
func short(version string) string {
	v, _, _ := strings.Cut(version, " ")
	return v
}
