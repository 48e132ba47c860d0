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
		{"source through ..", "/a\tsource=Persistent/../../etc\n", nil, "source"},
		{"source ending in ..", "/a\tsource=Persistent/..\n", nil, "source"},
		{"empty source", "/a\tsource=\n", nil, "source"},
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

// TestFeatureBindings: every line of Tails' sample persistence.conf is a line of a feature; the
// table is consistent (sources in the feature's folder, one feature per destination and per
// source); and only the exact lines match.
func TestFeatureBindings(t *testing.T) {
	f, err := os.Open("testdata/persistence.conf")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	bs, err := ParsePersistenceConf(f)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if _, ok := FeatureOfBinding(b); !ok {
			t.Errorf("Tails' own line %+v is not a feature's", b)
		}
	}
	dests, sources := map[string]bool{}, map[string]bool{}
	for _, f := range Features() {
		if len(f.Bindings) == 0 {
			t.Errorf("feature %s has no persistence.conf line", f.Name)
		}
		for _, b := range f.Bindings {
			if top, _, _ := strings.Cut(b.Source, "/"); top != f.Source || dests[b.Destination] || sources[b.Source] {
				t.Errorf("feature %s: line %+v (folder %s; destinations and sources must be unique)", f.Name, b, f.Source)
			}
			dests[b.Destination], sources[b.Source] = true, true
			line := b.Destination + "\t" + strings.Join(b.Options, ",") + "\n"
			parsed, err := ParsePersistenceConf(strings.NewReader(line))
			if err != nil || len(parsed) != 1 {
				t.Fatalf("%q: %v", line, err)
			}
			if got, ok := FeatureOfBinding(parsed[0]); !ok || got.Name != f.Name {
				t.Errorf("%q is the feature %q, want %q", line, got.Name, f.Name)
			}
		}
	}
	for _, tt := range []struct {
		line string
		want string // the feature's name, "" for none
	}{
		{"/home/amnesia\tsource=dotfiles,link", "Dotfiles"},
		{"/home/amnesia\tlink,source=dotfiles", "Dotfiles"},
		{"/home/amnesia/.ssh\tsource=openssh-client", "SSH Client"},
		{"/var/lib/apt/lists\tsource=apt/lists", "Additional Software"},
		{"/home/amnesia\tsource=dotfiles", ""},                       // bind-mounted over the whole home
		{"/home/amnesia/Persistent\tsource=Persistent,link", ""},     // link where Tails binds
		{"/home/amnesia/Persistent\tsource=Persistent,file", ""},     // file
		{"/home/amnesia/Persistent\tsource=Persistent,union", ""},    // an option Tails does not write
		{"/home/amnesia/Persistent\tsource=x,source=Persistent", ""}, // two sources
		{"/home/amnesia/Persistent\tsource=Persistent,source=Persistent", ""},
		{"/home/amnesia/Persistent", ""}, // the default source
		{"/home/amnesia/Persistent\tsource=thunderbird", ""},
		{"/home/amnesia/Persistent/x\tsource=Persistent", ""},
		{"/home/amnesia/.config/autostart\tsource=dotfiles", ""},
		{"/var/lib/gdm3/settings\tsource=greeter-settings", ""},
		{"/etc/sudoers.d\tsource=Persistent", ""},
	} {
		bs, err := ParsePersistenceConf(strings.NewReader(tt.line + "\n"))
		if err != nil || len(bs) != 1 {
			t.Fatalf("%q: %v", tt.line, err)
		}
		f, ok := FeatureOfBinding(bs[0])
		if ok != (tt.want != "") || f.Name != tt.want {
			t.Errorf("FeatureOfBinding(%q) = %q, %v; want %q", tt.line, f.Name, ok, tt.want)
		}
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
