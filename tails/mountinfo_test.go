package tails

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestParseMountInfo(t *testing.T) {
	in := `22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/mapper/root rw
36 22 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
40 22 7:3 / /media/amnesia/Tails\040Data rw shared:5 master:2 - ext4 /dev/loop3 rw,acl
41 22 0:5 / /dev rw - devtmpfs udev rw
`
	got, err := ParseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{ID: 22, ParentID: 1, Major: 254, Minor: 1, Root: "/", MountPoint: "/", FSType: "ext4", Source: "/dev/mapper/root"},
		{ID: 36, ParentID: 22, Major: 98, Minor: 0, Root: "/mnt1", MountPoint: "/mnt/parent", FSType: "ext3", Source: "/dev/root"},
		{ID: 40, ParentID: 22, Major: 7, Minor: 3, Root: "/", MountPoint: "/media/amnesia/Tails Data", FSType: "ext4", Source: "/dev/loop3"},
		{ID: 41, ParentID: 22, Major: 0, Minor: 5, Root: "/", MountPoint: "/dev", FSType: "devtmpfs", Source: "udev"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []string{"1 2 3\n", "x 1 7:0 / / rw - ext4 a rw\n", "1 1 70 / / rw - ext4 a rw\n", "1 1 7:0 / / rw shared:1 ext4 a rw\n"} {
		if _, err := ParseMountInfo(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	for in, want := range map[string]string{
		`/a\040b`: "/a b", `/tab\011x`: "/tab\tx", `/back\134slash`: `/back\slash`, `/plain`: "/plain", `/bad\09`: `/bad\09`, `/end\04`: `/end\04`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
	if got := unescapeMount(`a\134b\011c\012d\0`); got != "a\\b\tc\nd\\0" {
		t.Errorf("unescape: %q", got)
	}
}

func TestParseMountInfoOfThisSystem(t *testing.T) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	ms, err := ParseMountInfo(f)
	if err != nil || len(ms) == 0 {
		t.Fatalf("%d mounts, %v", len(ms), err)
	}
}

// FuzzParseMountInfo: whatever the input, ParseMountInfo returns an error and no mount, or
// one mount for each line that is not blank.
func FuzzParseMountInfo(f *testing.F) {
	f.Add([]byte("22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/mapper/root rw\n"))
	f.Add([]byte("40 22 7:3 / /media/amnesia/Tails\\040Data rw shared:5 master:2 - ext4 /dev/loop3 rw,acl\n"))
	f.Add([]byte("1 1 7:0 / / rw shared:1 ext4 a rw\n"))
	f.Add([]byte("1 1 7:0 /a\\134b /x rw - ext4 a rw\n\n2 1 7:1 / /y rw - - - rw\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		ms, err := ParseMountInfo(strings.NewReader(string(in)))
		if err != nil {
			if ms != nil {
				t.Fatalf("mounts %+v with error %v", ms, err)
			}
			return
		}
		lines := 0
		for _, l := range strings.Split(string(in), "\n") {
			if strings.TrimSpace(l) != "" {
				lines++
			}
		}
		if len(ms) != lines {
			t.Fatalf("%d mounts from %d lines", len(ms), lines)
		}
	})
}
