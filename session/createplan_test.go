package session

import (
	"strings"
	"testing"
)

func TestPlanBackupLayout(t *testing.T) {
	tests := []struct {
		name       string
		stick      uint64
		ok         bool
		system     uint64
		dataOffset uint64
		dataSize   uint64
		dataUsable uint64
	}{
		// 7629 MiB: 4 GiB system at 2 MiB, data from 4098 MiB to 1 MiB before the end;
		// usable = 3530 MiB - 16 MiB LUKS2 - 256 MiB journal - 3530/32 MiB.
		{"8 GB stick", 8_000_000_000, true, 4 << 30, 4098 * mib, 3530 * mib, 3530*mib - 272*mib - 3530*mib/32},
		{"just under 14500 MiB", 14499 * mib, true, 4 << 30, 4098 * mib, 10400 * mib, 10400*mib - 272*mib - 10400*mib/32},
		{"14500 MiB gets 8 GiB", 14500 * mib, true, 8 << 30, 8194 * mib, 6305 * mib, 6305*mib - 272*mib - 6305*mib/32},
		{"16 GiB", 16 << 30, true, 8 << 30, 8194 * mib, 8189 * mib, 8189*mib - 272*mib - 8189*mib/32},
		{"not a whole MiB", 16<<30 + 12345, true, 8 << 30, 8194 * mib, 8189 * mib, 8189*mib - 272*mib - 8189*mib/32},
		{"no room after the system partition", 4<<30 + 100*mib, false, 4 << 30, 4098 * mib, 0, 0},
		{"empty", 0, false, 4 << 30, 4098 * mib, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok := PlanLayout(tt.stick)
			if ok != tt.ok || l.SystemOffset != 2*mib || l.SystemSize != tt.system || l.DataOffset != tt.dataOffset ||
				l.DataSize != tt.dataSize || l.DataUsable != tt.dataUsable {
				t.Errorf("PlanLayout(%d) = %+v, %v; want system %d, data at %d size %d usable %d, ok %v",
					tt.stick, l, ok, tt.system, tt.dataOffset, tt.dataSize, tt.dataUsable, tt.ok)
			}
			if ok && l.DataOffset+l.DataSize+gptTailSpace > tt.stick {
				t.Errorf("the layout ends past the stick: %+v", l)
			}
		})
	}
}

func TestStickFitsAndNeededSize(t *testing.T) {
	tests := []struct {
		name   string
		stick  uint64
		used   uint64
		fits   bool
		needed uint64 // NeededStickSize(stick, used)
	}{
		{"empty Persistent Storage, 8 GB", 8_000_000_000, 0, true, 7200 * mib},
		{"under Tails' minimum", 7199 * mib, 0, false, 7200 * mib},
		{"Tails' minimum", 7200 * mib, 0, true, 7200 * mib},
		{"4 GB stick", 4_000_000_000, 0, false, 7200 * mib},
		{"2 GiB on 8 GB", 8_000_000_000, 2 << 30, true, 7200 * mib},
		// 3 GiB + 10% = 3379.2 MiB; usable(P) = P*31/32 - 272 MiB >= that from P = 3769 MiB,
		// after the 4098 MiB of system partition and 1 MiB at the end.
		{"3 GiB on 8 GB", 8_000_000_000, 3 << 30, false, 7868 * mib},
		{"3 GiB on the smallest that fits", 7868 * mib, 3 << 30, true, 7868 * mib},
		{"3 GiB on one MiB less", 7867 * mib, 3 << 30, false, 7868 * mib},
		// 8900 MiB fits under 14500 MiB with a 4 GiB system partition (P = 10387 MiB)...
		{"8900 MiB, small rule", 14486 * mib, 8900 * mib, true, 14486 * mib},
		{"8900 MiB, one MiB less", 14485 * mib, 8900 * mib, false, 14486 * mib},
		// ...but a stick of 14500 MiB or more gets 8 GiB, and then needs 18582 MiB: it is told
		// that size, never one under its own.
		{"8900 MiB on 14600 MiB", 14600 * mib, 8900 * mib, false, 18582 * mib},
		{"8900 MiB on 16 GiB", 16 << 30, 8900 * mib, false, 18582 * mib},
		{"8900 MiB, big rule", 18582 * mib, 8900 * mib, true, 18582 * mib},
		// 9000 MiB cannot fit with 4 GiB at all (at most 9803 MiB usable): even a small stick
		// is told the size with 8 GiB.
		{"9000 MiB on 8 GB", 8_000_000_000, 9000 * mib, false, 18696 * mib},
		{"9000 MiB on 32 GB", 32_000_000_000, 9000 * mib, true, 18696 * mib},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StickFits(tt.stick, tt.used); got != tt.fits {
				t.Errorf("StickFits(%d MiB, %d MiB) = %v, want %v", tt.stick/mib, tt.used/mib, got, tt.fits)
			}
			got := NeededStickSize(tt.stick, tt.used)
			if got != tt.needed {
				t.Errorf("NeededStickSize(%d MiB, %d MiB) = %d MiB, want %d MiB", tt.stick/mib, tt.used/mib, got/mib, tt.needed/mib)
			}
			if !tt.fits && got <= tt.stick {
				t.Errorf("a stick that does not fit is told it needs %d, not more than its %d", got, tt.stick)
			}
		})
	}
}

// TestNeededSizeIsTheSmallest checks, for many sizes of data, that the needed size fits and one
// MiB less does not (except at Tails' minimum and where the 8 GiB rule starts).
func TestNeededSizeIsTheSmallest(t *testing.T) {
	for used := uint64(0); used <= 40<<30; used += 777 * mib {
		for _, from := range []uint64{0, 16 << 30} {
			n := NeededStickSize(from, used)
			if !StickFits(n, used) {
				t.Errorf("used %d MiB from %d: %d MiB does not fit", used/mib, from/mib, n/mib)
			}
			if n > minBackupStickSize && n != 14500*mib && StickFits(n-mib, used) {
				t.Errorf("used %d MiB from %d: %d MiB fits too", used/mib, from/mib, (n-mib)/mib)
			}
		}
	}
}

func TestNotEligible(t *testing.T) {
	stick := DriveFacts{Size: 16 << 30, Removable: true}
	tests := []struct {
		name string
		d    DriveFacts
		used uint64
		want string // "" for eligible
	}{
		{"a USB stick", stick, 1 << 30, ""},
		{"the boot stick", DriveFacts{Size: 16 << 30, Removable: true, Boot: true, SystemHint: true}, 0, "it is the stick this Tails is running from"},
		{"an internal disk", DriveFacts{Size: 256 << 30, SystemHint: true}, 0, "it is an internal disk, not a removable USB stick"},
		{"a card reader without a card", DriveFacts{Removable: true, NoMedium: true}, 0, "it has no medium"},
		{"a size of 0", DriveFacts{Removable: true}, 0, "it has no medium"},
		{"read-only", DriveFacts{Size: 16 << 30, Removable: true, ReadOnly: true}, 0, "it is read-only (if it has a lock switch, unlock it)"},
		{"a system device", DriveFacts{Size: 16 << 30, Removable: true, SystemHint: true}, 0, "the system marks it as a system device, which Tails Backup never writes to"},
		{"4 GB", DriveFacts{Size: 4_000_000_000, Removable: true}, 0,
			"it is too small: a backup of this Tails needs a stick of at least 7.5 GB, this one has 4.0 GB"},
		{"16 GiB for 9000 MiB of data", stick, 9000 * mib,
			"it is too small: a backup of this Tails needs a stick of at least 19.6 GB, this one has 17.2 GB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.d.NotEligibleIn(nil, tt.used)
			if got != tt.want {
				t.Errorf("NotEligible = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "\n") {
				t.Error("a reason must hold on one line")
			}
		})
	}
}
