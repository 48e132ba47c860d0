package e2e

import (
	"fmt"
	"slices"
	"testing"
)

func TestSelectScenarios(t *testing.T) {
	all := []scenario{
		{name: "prepare-sticks"},
		{name: "start-agent"},
		{name: "1-create"},
		{name: "13-backup-boots", needs: []string{"1-create"}},
		{name: "2-update", needs: []string{"1-create"}},
		{name: "5-unpaired-stick", needs: []string{"prepare-sticks"}},
		{name: "pair", needs: []string{"prepare-sticks"}},
		{name: "9-system-refresh", needs: []string{"1-create"}},
		{name: "13-backup-boots-refreshed", needs: []string{"9-system-refresh", "13-backup-boots"}},
		{name: "10-pulls", needs: []string{"1-create"}},
		{name: "11-backup-full", needs: []string{"1-create"}, tails: 7},
		{name: "8-backup-tails", needs: []string{"1-create"}},
	}
	tests := []struct {
		only    string
		tails   int
		want    []string
		wantErr bool
	}{
		{"", 7, []string{"prepare-sticks", "start-agent", "1-create", "13-backup-boots", "2-update", "5-unpaired-stick", "pair", "9-system-refresh", "13-backup-boots-refreshed", "10-pulls", "11-backup-full", "8-backup-tails"}, false},
		// 11 belongs to Tails 7's leg: the other leg runs it only when E2E_ONLY names it.
		{"", 6, []string{"prepare-sticks", "start-agent", "1-create", "13-backup-boots", "2-update", "5-unpaired-stick", "pair", "9-system-refresh", "13-backup-boots-refreshed", "10-pulls", "8-backup-tails"}, false},
		{"11", 6, []string{"start-agent", "1-create", "11-backup-full"}, false},
		{"10", 7, []string{"start-agent", "1-create", "10-pulls"}, false},
		{"11,10", 7, []string{"start-agent", "1-create", "10-pulls", "11-backup-full"}, false},
		{"5", 7, []string{"prepare-sticks", "start-agent", "5-unpaired-stick"}, false},
		{" pair , 8-backup-tails", 7, []string{"prepare-sticks", "start-agent", "1-create", "pair", "8-backup-tails"}, false},
		{"1", 7, []string{"start-agent", "1-create"}, false},
		// Scenario 13 is two steps: after create, and after the system refresh (9).
		{"13", 7, []string{"start-agent", "1-create", "13-backup-boots", "9-system-refresh", "13-backup-boots-refreshed"}, false},
		{"13-backup-boots", 7, []string{"start-agent", "1-create", "13-backup-boots"}, false},
		{"9", 7, []string{"start-agent", "1-create", "9-system-refresh"}, false},
		{"14", 7, nil, true},
		{"pulls", 7, nil, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q,tails%d", tt.only, tt.tails), func(t *testing.T) {
			got, err := selectScenarios(all, tt.tails, tt.only, "start-agent")
			if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Errorf("selectScenarios(%q) on Tails %d = %q, %v; want %q (error %v)", tt.only, tt.tails, got, err, tt.want, tt.wantErr)
			}
		})
	}
}
