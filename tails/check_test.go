//go:build linux

package tails

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// validPersistentStorage makes, in a new temporary folder, a Persistent Storage root as Tails
// makes it.
func validPersistentStorage(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ps")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(dir, 0o700))
	must(os.Chown(dir, 0, 0))
	must(unix.Setxattr(dir, ACLXattrAccess, EncodeACL(PersistenceRootACL(0)), 0))
	must(os.Chmod(dir, PersistenceRootMode))
	conf := filepath.Join(dir, PersistenceConfName)
	must(os.WriteFile(conf, []byte("/home/amnesia/Persistent\tsource=Persistent\n/home/amnesia\tsource=dotfiles,link\n"), 0o600))
	must(os.Chown(conf, PersistentStorageUID, PersistentStorageGID))
	must(os.Chmod(conf, 0o600))
	las := filepath.Join(dir, LiveAdditionalSoftwareConfName)
	must(os.WriteFile(las, []byte("vim\n"), 0o644))
	must(os.Chown(las, PersistentStorageUID, PersistentStorageGID))
	must(os.Chmod(las, 0o644))
	return dir
}

func TestCheckPersistentStorage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (chown)")
	}
	probe := t.TempDir()
	if err := unix.Setxattr(probe, ACLXattrAccess, EncodeACL(PersistenceRootACL(0)), 0); errors.Is(err, unix.EOPNOTSUPP) {
		t.Skipf("the temporary folder's file system has no POSIX ACLs: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		// want are substrings of the problems, in order ("path: what"); warnings start with "warning: ".
		want         []string
		wantFeatures bool
	}{
		{"valid", nil, nil, true},
		{"no additional software list", func(t *testing.T, dir string) {
			must(os.Remove(filepath.Join(dir, LiveAdditionalSoftwareConfName)))
		}, nil, true},
		{"root owned by amnesia", func(t *testing.T, dir string) { must(os.Chown(dir, AmnesiaUID, AmnesiaUID)) },
			[]string{".: The root folder is owned by 1000:1000 instead of root:root."}, true},
		{"root mode 0700", func(t *testing.T, dir string) { must(os.Chmod(dir, 0o700)) },
			[]string{".: The root folder has mode 0700 instead of 0770.", `.: The ACL of the root folder is "user::rwx user:1000:--x group::rwx mask::--- other::---"`}, true},
		{"old root 0775 without ACL", func(t *testing.T, dir string) {
			must(unix.Removexattr(dir, ACLXattrAccess))
			must(os.Chmod(dir, 0o775))
		}, []string{"warning: .: The root folder has mode 0775, as made by old versions of Tails"}, true},
		{"old root 0775 with the ACL", func(t *testing.T, dir string) { must(os.Chmod(dir, 0o775)) },
			[]string{"warning: .: The root folder has mode 0775"}, true},
		{"root without ACL", func(t *testing.T, dir string) {
			must(unix.Removexattr(dir, ACLXattrAccess))
			must(os.Chmod(dir, 0o770))
		}, []string{".: The root folder has no ACL, so amnesia cannot reach its folders"}, true},
		{"root ACL gives amnesia more", func(t *testing.T, dir string) {
			acl := PersistenceRootACL(0)
			acl[1].Perm = 7
			must(unix.Setxattr(dir, ACLXattrAccess, EncodeACL(acl), 0))
		}, []string{`.: The ACL of the root folder is "user::rwx user:1000:rwx group::rwx mask::rwx other::---" instead of "user::rwx user:1000:--x group::rwx mask::rwx other::---".`}, true},
		{"root ACL as Tails 7 leaves a backup it mounted", func(t *testing.T, dir string) {
			// setfacl -m user:amnesia:rx, as Tails 7's service does on /media/amnesia/TailsData.
			acl := PersistenceRootACL(0)
			acl[1].Perm = 5
			must(unix.Setxattr(dir, ACLXattrAccess, EncodeACL(acl), 0))
		}, nil, true},
		{"root ACL gives amnesia read but not search", func(t *testing.T, dir string) {
			acl := PersistenceRootACL(0)
			acl[1].Perm = 4
			must(unix.Setxattr(dir, ACLXattrAccess, EncodeACL(acl), 0))
		}, []string{`.: The ACL of the root folder is "user::rwx user:1000:r-- group::rwx mask::rwx other::---"`}, true},
		{"root with a default ACL", func(t *testing.T, dir string) {
			must(unix.Setxattr(dir, ACLXattrDefault, EncodeACL(PersistenceRootACL(0)), 0))
		}, []string{".: The root folder has a default ACL"}, true},
		{"persistence.conf missing", func(t *testing.T, dir string) { must(os.Remove(filepath.Join(dir, PersistenceConfName))) },
			[]string{"persistence.conf: It is missing"}, false},
		{"persistence.conf 0644", func(t *testing.T, dir string) { must(os.Chmod(filepath.Join(dir, PersistenceConfName), 0o644)) },
			[]string{"persistence.conf: Its mode is 0644 instead of exactly 0600, so Tails would disable it"}, false},
		{"persistence.conf owned by root", func(t *testing.T, dir string) { must(os.Chown(filepath.Join(dir, PersistenceConfName), 0, 0)) },
			[]string{"persistence.conf: It is owned by 0:0 instead of 115:122"}, false},
		{"persistence.conf a symlink", func(t *testing.T, dir string) {
			conf := filepath.Join(dir, PersistenceConfName)
			must(os.Rename(conf, conf+".real"))
			must(os.Symlink(PersistenceConfName+".real", conf))
		}, []string{"persistence.conf: It is a symbolic link instead of a regular file"}, false},
		{"persistence.conf a folder", func(t *testing.T, dir string) {
			conf := filepath.Join(dir, PersistenceConfName)
			must(os.Remove(conf))
			must(os.Mkdir(conf, 0o600))
		}, []string{"persistence.conf: It is a folder instead of a regular file"}, false},
		{"persistence.conf with an ACL", func(t *testing.T, dir string) {
			conf := filepath.Join(dir, PersistenceConfName)
			must(unix.Setxattr(conf, ACLXattrAccess, EncodeACL([]ACLEntry{{ACLUserObj, 6, ACLUndefinedID}, {ACLUser, 4, AmnesiaUID},
				{ACLGroupObj, 0, ACLUndefinedID}, {ACLMask, 0, ACLUndefinedID}, {ACLOther, 0, ACLUndefinedID}}), 0))
		}, []string{"persistence.conf: It has an ACL (user::rw- user:1000:r-- group::--- mask::--- other::---)"}, false},
		{"persistence.conf with a bad line", func(t *testing.T, dir string) {
			conf := filepath.Join(dir, PersistenceConfName)
			must(os.WriteFile(conf, []byte("/home/amnesia/Persistent\tsource=Persistent\nrelative\tsource=x\n"), 0o600))
		}, []string{`persistence.conf: Line 2 is invalid: destination "relative" is not a clean absolute path.`}, false},
		{"additional software list wrong", func(t *testing.T, dir string) {
			las := filepath.Join(dir, LiveAdditionalSoftwareConfName)
			must(os.Chown(las, AmnesiaUID, AmnesiaUID))
			must(os.Chmod(las, 0o666))
		}, []string{"live-additional-software.conf: It is owned by 1000:1000", "live-additional-software.conf: Its mode is 0666 instead of 0644."}, true},
		{"additional software list a symlink", func(t *testing.T, dir string) {
			las := filepath.Join(dir, LiveAdditionalSoftwareConfName)
			must(os.Remove(las))
			must(os.Symlink("/etc/passwd", las))
		}, []string{"live-additional-software.conf: It is a symbolic link instead of a regular file"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := validPersistentStorage(t)
			if tt.change != nil {
				tt.change(t, dir)
			}
			fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			problems, features := CheckPersistentStorage(fd)
			var got []string
			for _, p := range problems {
				got = append(got, p.String())
				if strings.Contains(p.What, "\n") || !strings.HasSuffix(p.What, ".") {
					t.Errorf("problem %q is not one sentence", p.What)
				}
				// The session words the code, not the English sentence.
				if !slices.Contains(Findings, p.Code) {
					t.Errorf("problem %q has the code %q, not one of Findings", p.What, p.Code)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("problems:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("problem %d is %q, want it to start with %q", i, got[i], tt.want[i])
				}
			}
			var names []string
			for _, f := range features {
				names = append(names, f.Source)
			}
			slices.Sort(names)
			if tt.wantFeatures && !slices.Equal(names, []string{"Persistent", "dotfiles"}) {
				t.Errorf("features %q, want Persistent and dotfiles", names)
			} else if !tt.wantFeatures && len(names) != 0 {
				t.Errorf("features %q, want none: Tails would disable persistence.conf", names)
			}
		})
	}
}

func TestDecodeACLRejects(t *testing.T) {
	for _, b := range [][]byte{nil, {2, 0, 0}, {1, 0, 0, 0}, append(EncodeACL(PersistenceRootACL(0)), 1)} {
		if _, err := DecodeACL(b); err == nil {
			t.Errorf("DecodeACL(%x) accepted", b)
		}
	}
	es, err := DecodeACL(EncodeACL(PersistenceRootACL(0)))
	if err != nil || FormatACL(es) != "user::rwx user:1000:--x group::rwx mask::rwx other::---" {
		t.Errorf("decodeACL = %q, %v", FormatACL(es), err)
	}
}
