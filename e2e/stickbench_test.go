package e2e

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"tails-backup/e2e/proto"
)

func TestThrottleLimits(t *testing.T) {
	tests := []struct {
		name      string
		st        USBStick
		throttled bool
		want      map[string]any
	}{
		{"none", USBStick{ID: "a"}, false, map[string]any{}},
		{"write bytes only (scenario 10)", USBStick{WriteBps: 20_000_000}, true, map[string]any{"bps-write": int64(20_000_000)}},
		{"a flash stick", USBStick{WriteBps: 1, WriteIOPS: 2, ReadBps: 3, ReadIOPS: 4}, true,
			map[string]any{"bps-write": int64(1), "iops-write": int64(2), "bps-read": int64(3), "iops-read": int64(4)}},
		{"reads only", USBStick{ReadIOPS: 500}, true, map[string]any{"iops-read": int64(500)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.st.throttled(); got != tt.throttled {
				t.Errorf("throttled() = %v, want %v", got, tt.throttled)
			}
			if got := tt.st.throttleLimits(); !maps.Equal(got, tt.want) {
				t.Errorf("throttleLimits() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLikeFlash(t *testing.T) {
	st := likeFlash(&Stick{ID: "x"})
	if st.WriteBps != flashWriteBps || st.WriteIOPS != flashWriteIOPS || st.ReadBps != flashReadBps || st.ReadIOPS != flashReadIOPS {
		t.Errorf("likeFlash gave %+v", st)
	}
}

func TestComparisonTable(t *testing.T) {
	ours := BenchRow{Name: "ours", PlugToDone: 30 * time.Second, Mounted: 2500 * time.Millisecond,
		Stats: BlockStats{WrBytes: 50_000_000, WrOperations: 600, FlushOps: 7}}
	rsync := BenchRow{Name: "rsync", PlugToDone: 60 * time.Second, Mounted: 5 * time.Second,
		Stats: BlockStats{WrBytes: 80_000_000, WrOperations: 1200, FlushOps: 3}}
	got := strings.Split(strings.TrimSpace(ComparisonTable(ours, rsync)), "\n")
	want := []string{
		"| | plug-to-done (s) | plug to mounted (s) | mounted to done (s) | MB written | write requests | flushes |",
		"|---|---|---|---|---|---|---|",
		"| ours | 30.0 | 2.5 | 27.5 | 50.0 | 600 | 7 |",
		"| rsync | 60.0 | 5.0 | 55.0 | 80.0 | 1200 | 3 |",
		"| ratio ours/rsync | 0.50 | | 0.50 | 0.62 | 0.50 | |",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ComparisonTable:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A mount that was not seen leaves its columns empty.
	ours.Mounted = 0
	if got := ComparisonTable(ours, rsync); !strings.Contains(got, "| ours | 30.0 | — | — | 50.0 | 600 | 7 |") || !strings.Contains(got, "| ratio ours/rsync | 0.50 | | — |") {
		t.Errorf("ComparisonTable without the mount:\n%s", got)
	}
}

func TestParallelismTable(t *testing.T) {
	runs := []SyncRun{
		{Workers: "1", Took: 10 * time.Second, Stats: BlockStats{WrBytes: 20_000_000, WrOperations: 100}},
		{Workers: "8", Took: 20 * time.Second, Stats: BlockStats{WrBytes: 30_000_000, WrOperations: 300}},
		{Workers: "8", Took: 30 * time.Second, Stats: BlockStats{WrBytes: 10_000_000, WrOperations: 100}},
		{Workers: "1", Took: 12 * time.Second, Stats: BlockStats{WrBytes: 20_000_000, WrOperations: 300}},
	}
	got := strings.Split(strings.TrimSpace(ParallelismTable(runs)), "\n")
	want := []string{
		"| workers | runs (s) | mean (s) | / first row | MB written | write requests |",
		"|---|---|---|---|---|---|",
		"| 1 | 10.0, 12.0 | 11.0 | 1.00 | 20.0 | 200 |",
		"| 8 | 20.0, 30.0 | 25.0 | 2.27 | 20.0 | 200 |",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ParallelismTable:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestResumeTable(t *testing.T) {
	ours := ResumeRow{Name: "ours", AtPull: BlockStats{WrBytes: 84_000_000}, PulledAfter: 9 * time.Second,
		Second: BenchRow{PlugToDone: 15 * time.Second, Stats: BlockStats{WrBytes: 130_000_000, WrOperations: 500, FlushOps: 9}}, Resumed: 80_000_000}
	rsync := ResumeRow{Name: "rsync", AtPull: BlockStats{WrBytes: 84_000_000}, PulledAfter: 20 * time.Second,
		Second: BenchRow{PlugToDone: 30 * time.Second, Stats: BlockStats{WrBytes: 210_000_000, WrOperations: 1000, FlushOps: 3}}, Resumed: -1}
	got := strings.Split(strings.TrimSpace(ResumeTable(ours, rsync)), "\n")
	want := []string{
		"| | MB written before the pull | pulled after (s) | second plug: plug-to-done (s) | MB written | write requests | flushes | MB kept (read back) |",
		"|---|---|---|---|---|---|---|---|",
		"| ours | 84.0 | 9.0 | 15.0 | 130.0 | 500 | 9 | 80.0 |",
		"| rsync | 84.0 | 20.0 | 30.0 | 210.0 | 1000 | 3 | — |",
		"| ratio ours/rsync | 1.00 | | 0.50 | 0.62 | 0.50 | | |",
	}
	if !slices.Equal(got, want) {
		t.Errorf("ResumeTable:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLastProgress(t *testing.T) {
	tests := []struct {
		name  string
		notes []proto.Notification
		want  string
	}{
		{"none", nil, ""},
		{"the last of several", []proto.Notification{
			{Summary: noteUpdating, Body: "Unlocking your backup Tails with the key kept in this Tails: no passphrase is needed."},
			{Summary: noteUpdating, Body: "26% done. Do not unplug your backup Tails."},
			{Summary: noteUpdating, Body: "61% done. Do not unplug your backup Tails."},
			{Summary: "Something else", Body: "99% done"},
		}, "61% done. Do not unplug your backup Tails."},
		{"no progress", []proto.Notification{{Summary: noteUpdating, Body: "Unlocking your backup Tails"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastProgress(tt.notes); got != tt.want {
				t.Errorf("lastProgress() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseResumePullPercent(t *testing.T) {
	tests := []struct {
		env     string
		want    int
		wantErr bool
	}{
		{"", 40, false},
		{"  ", 40, false},
		{"40", 40, false},
		{"75", 75, false},
		{" 75\n", 75, false},
		{"5", 5, false},
		{"95", 95, false},
		{"4", 0, true},
		{"96", 0, true},
		{"0", 0, true},
		{"100", 0, true},
		{"-40", 0, true},
		{"40%", 0, true},
		{"40.5", 0, true},
		{"0x28", 0, true},
		{"forty", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			got, err := parseResumePullPercent(tt.env)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseResumePullPercent(%q) = %d, %v; want %d, error %v", tt.env, got, err, tt.want, tt.wantErr)
			}
			// The error names the variable, its value and what to set it to.
			if err != nil && (!strings.Contains(err.Error(), "E2E_RESUME_PULL_PERCENT=") || !strings.Contains(err.Error(), strings.TrimSpace(tt.env)) ||
				!strings.Contains(err.Error(), "from 5 to 95")) {
				t.Errorf("error %q does not say what is wrong and what to do", err)
			}
		})
	}
}

func TestResumePullPercentFromEnv(t *testing.T) {
	for _, tt := range []struct {
		env     string
		want    int
		wantErr bool
	}{{"", 40, false}, {"60", 60, false}, {"99", 0, true}} {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv("E2E_RESUME_PULL_PERCENT", tt.env)
			if got, err := ResumePullPercentFromEnv(); (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ResumePullPercentFromEnv() with %q = %d, %v; want %d, error %v", tt.env, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestShownProgress(t *testing.T) {
	plugged := time.Date(2026, 12, 7, 13, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return plugged.Add(time.Duration(ms) * time.Millisecond) }
	sample := func(ms int, rd, wr int64) stickSample {
		return stickSample{time.Duration(ms) * time.Millisecond, BlockStats{RdBytes: rd, WrBytes: wr}}
	}
	samples := []stickSample{sample(0, 0, 0), sample(1000, 5_000_000, 100_000), sample(2000, 35_000_000, 200_000), sample(3000, 65_000_000, 300_000)}
	tests := []struct {
		name    string
		notes   []proto.Notification
		samples []stickSample
		want    []ShownProgress
	}{
		{"none", nil, samples, nil},
		{"only the progress, with the counts of the last reading before each", []proto.Notification{
			{Summary: noteUpdating, Body: "Unlocking your backup Tails with the key kept in this Tails: no passphrase is needed.", Time: at(500)},
			{Summary: noteUpdating, Body: "0% done. Do not unplug your backup Tails.", Time: at(1500)},
			{Summary: noteUpdating, Body: "Do not unplug your backup Tails until it is done.", Time: at(1600)},
			{Summary: noteUpdating, Body: "30% done, about 1 minute left. Do not unplug your backup Tails.", Time: at(2000)},
			{Summary: noteDone, Body: "100% done", Time: at(2500)},
			{Summary: noteUpdating, Body: "90% done. Do not unplug your backup Tails.", Time: at(9000)},
		}, samples, []ShownProgress{
			{1500 * time.Millisecond, "0% done. Do not unplug your backup Tails.", 5_000_000, 100_000},
			{2000 * time.Millisecond, "30% done, about 1 minute left. Do not unplug your backup Tails.", 35_000_000, 200_000},
			{9000 * time.Millisecond, "90% done. Do not unplug your backup Tails.", 65_000_000, 300_000},
		}},
		{"a notification before the first reading, or without readings", []proto.Notification{
			{Summary: noteUpdating, Body: "0% done.", Time: at(-200)},
		}, samples, []ShownProgress{{-200 * time.Millisecond, "0% done.", 0, 0}}},
		{"no readings", []proto.Notification{{Summary: noteUpdating, Body: "5% done.", Time: at(700)}}, nil,
			[]ShownProgress{{700 * time.Millisecond, "5% done.", 0, 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := shownProgress(tt.notes, plugged, tt.samples); !slices.Equal(got, tt.want) {
				t.Errorf("shownProgress() =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestResumeReadBackEnd(t *testing.T) {
	samples := []stickSample{
		{100 * time.Millisecond, BlockStats{RdBytes: 0}},
		{1 * time.Second, BlockStats{RdBytes: 30_000_000}},
		{2 * time.Second, BlockStats{RdBytes: 60_000_000}},
		{3 * time.Second, BlockStats{RdBytes: 60_000_000, WrBytes: 20_000_000}},
	}
	tests := []struct {
		name string
		kept int64
		want time.Duration
	}{
		{"reached at a reading", 30_000_000, time.Second},
		{"reached between two readings", 45_000_000, 2 * time.Second},
		{"never reached", 60_000_001, 0},
		{"nothing kept", 0, 0},
		{"not known (rsync)", -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readBackEnd(samples, tt.kept); got != tt.want {
				t.Errorf("readBackEnd(%d) = %v, want %v", tt.kept, got, tt.want)
			}
		})
	}
}

func TestResumeReplugTimes(t *testing.T) {
	tests := []struct {
		name string
		row  ResumeRow
		want string
	}{
		{"all known", ResumeRow{Resumed: 134_217_728, MirrorAt: 5100 * time.Millisecond, ReadBack: 9300 * time.Millisecond},
			"the helper began mirroring at 5.1 s after the plug, the stick's reads reached the 134.2 MB kept at 9.3 s (the read-back cannot have ended sooner)"},
		{"reads short of the kept part", ResumeRow{Resumed: 134_217_728, MirrorAt: 5100 * time.Millisecond},
			"the helper began mirroring at 5.1 s after the plug, the stick's reads never reached the 134.2 MB kept"},
		{"nothing kept, no log", ResumeRow{Resumed: 0},
			"the helper began mirroring (not known) after the plug, nothing was kept to read back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReplugTimes(tt.row); got != tt.want {
				t.Errorf("ReplugTimes() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestProgressTable(t *testing.T) {
	shown := []ShownProgress{
		{5300 * time.Millisecond, "0% done. Do not unplug your backup Tails.", 2_000_000, 100_000},
		{6400 * time.Millisecond, "18% done, about 1 minute left. Do not unplug your backup Tails.", 40_000_000, 150_000},
		{9300 * time.Millisecond, "70% done. Do not unplug your backup Tails.", 134_300_000, 200_000},
		{10400 * time.Millisecond, "80% done. Do not unplug your backup Tails.", 135_000_000, 20_000_000},
	}
	head := []string{"| s after the plug | shown | MB read from the stick | MB written to it | the kept part |", "|---|---|---|---|---|"}
	tests := []struct {
		name string
		row  ResumeRow
		want []string
	}{
		{"read back at 9.3 s", ResumeRow{SecondProgress: shown, Resumed: 134_217_728, ReadBack: 9300 * time.Millisecond}, append(slices.Clone(head),
			"| 5.3 | 0% done. Do not unplug your backup Tails. | 2.0 | 0.1 | not all read back yet |",
			"| 6.4 | 18% done, about 1 minute left. Do not unplug your backup Tails. | 40.0 | 0.1 | not all read back yet |",
			"| 9.3 | 70% done. Do not unplug your backup Tails. | 134.3 | 0.2 | read back |",
			"| 10.4 | 80% done. Do not unplug your backup Tails. | 135.0 | 20.0 | read back |")},
		{"reads that never reached the kept part", ResumeRow{SecondProgress: shown[:1], Resumed: 134_217_728}, append(slices.Clone(head),
			"| 5.3 | 0% done. Do not unplug your backup Tails. | 2.0 | 0.1 | not all read back yet |")},
		{"nothing kept", ResumeRow{SecondProgress: shown[3:], Resumed: 0}, append(slices.Clone(head),
			"| 10.4 | 80% done. Do not unplug your backup Tails. | 135.0 | 20.0 | — |")},
		{"no progress shown", ResumeRow{Resumed: 134_217_728, ReadBack: time.Second}, []string{"No progress notification was shown."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Split(strings.TrimSpace(ProgressTable(tt.row)), "\n"); !slices.Equal(got, tt.want) {
				t.Errorf("ProgressTable:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
