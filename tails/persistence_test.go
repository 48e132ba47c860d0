package tails

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestParsePersistenceConfTails6(t *testing.T) {
	f, err := os.Open("testdata/persistence.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bs, err := ParsePersistenceConf(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 7 {
		t.Fatalf("got %d bindings, want 7", len(bs))
	}
	dot := bs[2]
	if dot.Destination != "/home/amnesia" || dot.Source != "dotfiles" || !dot.Link || dot.File {
		t.Errorf("dotfiles binding = %+v", dot)
	}
	var names []string
	for _, f := range ActiveFeatures(bs) {
		names = append(names, f.Source)
	}
	want := []string{"Persistent", "apt", "thunderbird", "gnupg", "nm-system-connections", "dotfiles"}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("active features %q, want %q", names, want)
	}
}

func TestParsePersistenceConfLines(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Binding
		wantErr string
	}{
		{"empty", "", nil, ""},
		{"comments and blanks", "# comment\n\n   \n", nil, ""},
		{"default source", "/var/lib/tca\n", []Binding{{Destination: "/var/lib/tca", Source: "var/lib/tca"}}, ""},
		{"spaces instead of tab", "/home/amnesia/Persistent   source=Persistent\n",
			[]Binding{{Destination: "/home/amnesia/Persistent", Source: "Persistent", Options: []string{"source=Persistent"}}}, ""},
		{"file option", "/etc/x\tsource=x,file\n", []Binding{{Destination: "/etc/x", Source: "x", File: true, Options: []string{"source=x", "file"}}}, ""},
		{"unknown option kept", "/a\tsource=a,union\n", []Binding{{Destination: "/a", Source: "a", Options: []string{"source=a", "union"}}}, ""},
		{"relative destination", "home/amnesia\tsource=x\n", nil, "line 1: destination"},
		{"root destination", "/\tsource=x\n", nil, "line 1: destination"},
		{"unclean destination", "/home/../etc\tsource=x\n", nil, "destination"},
		{"source escapes", "/a\tsource=../etc\n", nil, "source"},
		{"absolute source", "/a\tsource=/etc\n", nil, "source"},
		{"dot source", "/a\tsource=.\n", nil, "source"},
		{"empty option", "/a\tsource=a,,link\n", nil, "empty option"},
		{"too many fields", "/a source=a link\n", nil, "3 fields"},
		{"error names its line", "/ok\tsource=ok\n\n/bad\tsource=..\n", nil, "line 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePersistenceConf(strings.NewReader(tt.in))
			if tt.wantErr != "" {
				var ce *ConfError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want a *ConfError containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Destination != w.Destination || g.Source != w.Source || g.Link != w.Link || g.File != w.File ||
					!slices.Equal(g.Options, w.Options) {
					t.Errorf("binding %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}

func TestParsePersistenceConfTooLarge(t *testing.T) {
	_, err := ParsePersistenceConf(strings.NewReader(strings.Repeat("#", maxConfSize+1)))
	if err == nil || !strings.Contains(err.Error(), "larger than 1 MiB") {
		t.Fatalf("error %v, want a size error", err)
	}
}

func TestSystemPartitionSize(t *testing.T) {
	for size, want := range map[uint64]uint64{8 << 30: 4 << 30, 14499 << 20: 4 << 30, 14500 << 20: 8 << 30, 64 << 30: 8 << 30} {
		if got := SystemPartitionSize(size); got != want {
			t.Errorf("SystemPartitionSize(%d) = %d, want %d", size, got, want)
		}
	}
}

func FuzzParsePersistenceConf(f *testing.F) {
	if seed, err := os.ReadFile("testdata/persistence.conf"); err == nil {
		f.Add(seed)
	}
	f.Add([]byte("/a\tsource=../b\n"))
	f.Add([]byte("# x\n/home/amnesia\tsource=dotfiles,link\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		bs, err := ParsePersistenceConf(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, b := range bs {
			if !strings.HasPrefix(b.Destination, "/") || !validSource(b.Source) {
				t.Fatalf("accepted unsafe binding %+v", b)
			}
			if strings.HasPrefix(b.Source, "/") || b.Source == ".." || strings.HasPrefix(b.Source, "../") {
				t.Fatalf("source %q leaves the root", b.Source)
			}
		}
	})
}
