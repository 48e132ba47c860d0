package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"strconv"
	"testing"
)

// readNewc parses a "newc" cpio archive as the kernel does: name -> mode, rdev and data.
func readNewc(t *testing.T, b []byte) map[string][3]string {
	t.Helper()
	entries := map[string][3]string{}
	field := func(h []byte, i int) int {
		v, err := strconv.ParseUint(string(h[6+8*i:14+8*i]), 16, 32)
		if err != nil {
			t.Fatalf("header field %d: %v", i, err)
		}
		return int(v)
	}
	align := func(n int) int { return (n + 3) &^ 3 }
	for off := 0; ; {
		if off+110 > len(b) || string(b[off:off+6]) != "070701" {
			t.Fatalf("no newc header at %d", off)
		}
		h := b[off : off+110]
		mode, size, rmaj, rmin, nameSize := field(h, 1), field(h, 6), field(h, 9), field(h, 10), field(h, 11)
		name := string(b[off+110 : off+110+nameSize-1])
		if b[off+110+nameSize-1] != 0 {
			t.Fatalf("name of %q not NUL-terminated", name)
		}
		data := align(off + 110 + nameSize)
		if name == "TRAILER!!!" {
			return entries
		}
		entries[name] = [3]string{strconv.FormatInt(int64(mode), 8), strconv.Itoa(rmaj) + ":" + strconv.Itoa(rmin), string(b[data : data+size])}
		off = align(data + size)
	}
}

func TestMakeInitramfs(t *testing.T) {
	initBin := []byte("\x7fELF not really")
	a, err := makeInitramfs(initBin, "6.10 - 20241203")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, raw)
	want := map[string][3]string{
		"dev":               {"40755", "0:0", ""},
		"dev/console":       {"20600", "5:1", ""},
		"etc":               {"40755", "0:0", ""},
		"etc/tails-version": {"100644", "0:0", "6.10 - 20241203\n"},
		"init":              {"100755", "0:0", string(initBin)},
	}
	if len(got) != len(want) {
		t.Errorf("entries %q, want %q", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
	// The same version gives the same bytes (a refresh to the same version changes nothing);
	// another version changes the file.
	again, _ := makeInitramfs(initBin, "6.10 - 20241203")
	other, _ := makeInitramfs(initBin, "6.11 - 20250107")
	if !bytes.Equal(a, again) || bytes.Equal(a, other) {
		t.Errorf("same version equal: %v (want true), other version equal: %v (want false)", bytes.Equal(a, again), bytes.Equal(a, other))
	}
}
