package udisks

import (
	"strconv"
	"strings"
)

// DaemonVersion is the version of the udisks2 daemon that the snapshot comes from (the Manager
// object's Version property, "2.10.1"), "" if the snapshot has no Manager.
func (s *Snapshot) DaemonVersion() string {
	o := s.Object(ManagerPath)
	if o == nil {
		return ""
	}
	v, ok := o.Property(IfaceManager, "Version")
	if !ok {
		return ""
	}
	str, _ := v.Value().(string)
	return str
}

// VersionAtLeast tells whether the udisks2 version v ("2.9.4", "2.10.1", "2.11.0-rc1") is
// major.minor or newer; a version it cannot read is not.
func VersionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(strings.TrimSpace(v), ".", 3)
	if len(parts) < 2 {
		return false
	}
	num := func(p string) (int, bool) {
		end := strings.IndexFunc(p, func(r rune) bool { return r < '0' || r > '9' })
		if end >= 0 {
			p = p[:end]
		}
		n, err := strconv.Atoi(p)
		return n, err == nil
	}
	ma, ok1 := num(parts[0])
	mi, ok2 := num(parts[1])
	if !ok1 || !ok2 {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

// MountAsUserVersion is the first udisks2 version whose Filesystem.Mount takes the option
// as-user (2.10.0): Tails 7 (Debian 13) has 2.10, Tails 6 (Debian 12) 2.9.4, which ignores it.
const (
	MountAsUserMajor = 2
	MountAsUserMinor = 10
)

// CanMountAsUser tells whether the daemon of snapshot s mounts on behalf of another user.
func (s *Snapshot) CanMountAsUser() bool {
	return VersionAtLeast(s.DaemonVersion(), MountAsUserMajor, MountAsUserMinor)
}
