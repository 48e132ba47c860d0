package tails_test

import (
	"strconv"
	"testing"

	"tails-backup/tails"
)

func TestIsWriteTemporary(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"." + tails.MarkerName + ".tmp-" + strconv.FormatInt(1796607469017313000, 36), true},
		{"." + tails.MarkerName + ".tmp-0", true},
		{"." + tails.MarkerName + ".tmp-", false},
		{"." + tails.MarkerName + ".tmp-ABC", false},
		{"." + tails.MarkerName + ".tmp-notes.txt", false},
		{"." + tails.MarkerName + ".tmp-12345678901234", false}, // longer than any int64
		{tails.MarkerName, false},
		{".other.json.tmp-abc", false},
		{"x." + tails.MarkerName + ".tmp-abc", false},
	}
	for _, tt := range tests {
		if got := tails.IsWriteTemporary(tt.name, tails.MarkerName); got != tt.want {
			t.Errorf("IsWriteTemporary(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}
