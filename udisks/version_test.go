package udisks

import "testing"

func TestVersionAtLeast(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"2.9.4", false},
		{"2.10.0", true},
		{"2.10.1", true},
		{"2.11.0-rc1", true},
		{"3.0", true},
		{"1.99.9", false},
		{"2.1", false},
		{"", false},
		{"2", false},
		{"two.ten", false},
	} {
		if got := VersionAtLeast(tt.v, MountAsUserMajor, MountAsUserMinor); got != tt.want {
			t.Errorf("VersionAtLeast(%q, 2, 10) = %v, want %v", tt.v, got, tt.want)
		}
	}
}
