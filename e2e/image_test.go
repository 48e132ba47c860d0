package e2e

import (
	"strconv"
	"strings"
	"testing"
)

func TestLegFromEnv(t *testing.T) {
	tests := []struct {
		env, suite string
		tails      int
		wantErr    bool
	}{
		{"", "trixie", 7, false},
		{"trixie", "trixie", 7, false},
		{"bookworm", "bookworm", 6, false},
		{"sid", "", 0, true},
		{"Trixie", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv("E2E_DEBIAN", tt.env)
			leg, err := LegFromEnv()
			if (err != nil) != tt.wantErr || leg.Suite != tt.suite || leg.Tails != tt.tails {
				t.Fatalf("LegFromEnv() = %+v, %v; want suite %q, Tails %d, error %v", leg, err, tt.suite, tt.tails, tt.wantErr)
			}
			if err == nil && (!strings.HasPrefix(leg.Version, strconv.Itoa(leg.Tails)+".") || !strings.HasPrefix(leg.Next, strconv.Itoa(leg.Tails)+".")) {
				t.Errorf("leg %s plays Tails %d but its versions are %q and %q", leg.Suite, leg.Tails, leg.Version, leg.Next)
			}
		})
	}
}
