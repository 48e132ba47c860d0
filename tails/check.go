//go:build linux

package tails

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// OldPersistenceRootMode is the mode of the root of a Persistent Storage created by older
// versions of Tails, which Tails still accepts.
const OldPersistenceRootMode = 0o775

// LiveAdditionalSoftwareConfName lists the packages Tails reinstalls at boot.
const LiveAdditionalSoftwareConfName = "live-additional-software.conf"

// readACL returns the ACL named attr of the file open as fd; nil without error when it has none.
func readACL(fd int, attr string) ([]ACLEntry, error) {
	buf := make([]byte, 4096)
	n, err := unix.Fgetxattr(fd, attr, buf)
	switch {
	case errors.Is(err, unix.ENODATA) || errors.Is(err, unix.EOPNOTSUPP):
		return nil, nil
	case err != nil:
		return nil, err
	}
	es, err := DecodeACL(buf[:n])
	if err != nil {
		return nil, err
	}
	if es == nil {
		es = []ACLEntry{}
	}
	return es, nil
}

// CheckPersistentStorage checks the root of a Persistent Storage, open as rootfd, the way Tails
// does before it activates it at boot (see TAILS-FACTS.md): the root is root:root, mode 0770
// with exactly the ACL user::rwx user:amnesia:--x group::rwx mask::rwx other::--- and no
// default ACL; persistence.conf is a regular file (not a symlink) owned by
// tails-persistent-storage, mode exactly 0600, without ACL, and every line of it parses;
// live-additional-software.conf, when present, is a regular file owned by
// tails-persistent-storage, mode 0644.
//
// A root with mode 0775, as Persistent Storage made by old versions of Tails have, is accepted
// by Tails: it is reported as a warning only (with no ACL, or the same ACL with other::r-x).
//
// It returns the problems found (none for a valid Persistent Storage) and the features that
// Tails would activate: none when persistence.conf is invalid, since Tails then renames it and
// activates nothing. Reading the root-only files needs root; an unreadable file is a problem
// that says so.
func CheckPersistentStorage(rootfd int) (problems []Problem, features []Feature) {
	add := func(path, code string, a ProblemArgs, format string, args ...any) {
		problems = append(problems, Problem{Path: path, Code: code, Args: a, What: fmt.Sprintf(format, args...)})
	}
	checkRoot(rootfd, &problems)

	bindings, ok := checkConf(rootfd, add)
	if ok {
		features = ActiveFeatures(bindings)
	}

	var st unix.Stat_t
	name := LiveAdditionalSoftwareConfName
	switch err := unix.Fstatat(rootfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		add(name, FindingUnexaminable, ProblemArgs{Detail: err.Error()}, "It cannot be examined (%v); run the check as root.", err)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		add(name, FindingAdditionalNotFile, ProblemArgs{}, "It is %s instead of a regular file, so Tails does not reinstall the Additional Software.", typeName(st.Mode))
	default:
		if st.Uid != PersistentStorageUID || st.Gid != PersistentStorageGID {
			add(name, FindingAdditionalOwner, ProblemArgs{Owner: owner(st)}, "It is owned by %d:%d instead of %d:%d (tails-persistent-storage).", st.Uid, st.Gid, PersistentStorageUID, PersistentStorageGID)
		}
		if m := st.Mode & 0o7777; m != 0o644 {
			add(name, FindingAdditionalMode, ProblemArgs{Mode: fmt.Sprintf("%04o", m)}, "Its mode is %04o instead of 0644.", m)
		}
	}
	return problems, features
}

func checkRoot(rootfd int, problems *[]Problem) {
	add := func(warning bool, code string, a ProblemArgs, format string, args ...any) {
		*problems = append(*problems, Problem{Path: ".", Code: code, Args: a, What: fmt.Sprintf(format, args...), Warning: warning})
	}
	var st unix.Stat_t
	if err := unix.Fstat(rootfd, &st); err != nil {
		add(false, FindingRootUnexaminable, ProblemArgs{Detail: err.Error()}, "The root folder cannot be examined (%v).", err)
		return
	}
	if st.Uid != 0 || st.Gid != 0 {
		add(false, FindingRootOwner, ProblemArgs{Owner: owner(st)}, "The root folder is owned by %d:%d instead of root:root.", st.Uid, st.Gid)
	}
	mode := st.Mode & 0o7777
	other := uint16(0)
	switch mode {
	case PersistenceRootMode:
	case OldPersistenceRootMode:
		other = 5
		add(true, FindingRootOldMode, ProblemArgs{}, "The root folder has mode 0775, as made by old versions of Tails, instead of 0770; Tails accepts it.")
	default:
		add(false, FindingRootMode, ProblemArgs{Mode: fmt.Sprintf("%04o", mode)}, "The root folder has mode %04o instead of 0770.", mode)
	}
	acl, err := readACL(rootfd, ACLXattrAccess)
	switch {
	case err != nil:
		add(false, FindingRootACLUnreadable, ProblemArgs{Detail: err.Error()}, "The ACL of the root folder cannot be read (%v).", err)
	case acl == nil && mode == OldPersistenceRootMode:
		// Old volumes predate the ACL: amnesia reaches its folders through other::r-x.
	case acl == nil:
		add(false, FindingRootNoACL, ProblemArgs{}, "The root folder has no ACL, so amnesia cannot reach its folders; Tails expects user:%d:--x.", AmnesiaUID)
	case slices.Equal(acl, MountedRootACL(other)):
		// As Tails 7 leaves a backup it mounted for amnesia (MountedRootACL).
	case !slices.Equal(acl, PersistenceRootACL(other)):
		add(false, FindingRootACL, ProblemArgs{ACL: FormatACL(acl), WantACL: FormatACL(PersistenceRootACL(other))}, "The ACL of the root folder is %q instead of %q.", FormatACL(acl), FormatACL(PersistenceRootACL(other)))
	}
	def, err := readACL(rootfd, ACLXattrDefault)
	if err == nil && def != nil {
		add(false, FindingRootDefaultACL, ProblemArgs{ACL: FormatACL(def)}, "The root folder has a default ACL (%s), which Tails does not set.", FormatACL(def))
	} else if err != nil {
		add(false, FindingRootDefaultACLUnreadable, ProblemArgs{Detail: err.Error()}, "The default ACL of the root folder cannot be read (%v).", err)
	}
}

// checkConf checks persistence.conf; ok means Tails would use it, with those bindings.
func checkConf(rootfd int, add func(path, code string, a ProblemArgs, format string, args ...any)) (bindings []Binding, ok bool) {
	name := PersistenceConfName
	var st unix.Stat_t
	err := unix.Fstatat(rootfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		add(name, FindingConfMissing, ProblemArgs{}, "It is missing, so Tails would activate no feature of this Persistent Storage.")
		return nil, false
	case err != nil:
		add(name, FindingUnexaminable, ProblemArgs{Detail: err.Error()}, "It cannot be examined (%v); run the check as root.", err)
		return nil, false
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		add(name, FindingConfNotFile, ProblemArgs{}, "It is %s instead of a regular file, so Tails would disable it and activate no feature.", typeName(st.Mode))
		return nil, false
	}
	ok = true
	if st.Uid != PersistentStorageUID || st.Gid != PersistentStorageGID {
		add(name, FindingConfOwner, ProblemArgs{Owner: owner(st)}, "It is owned by %d:%d instead of %d:%d (tails-persistent-storage), so Tails would disable it and activate no feature.",
			st.Uid, st.Gid, PersistentStorageUID, PersistentStorageGID)
		ok = false
	}
	if m := st.Mode & 0o7777; m != PersistenceConfMode {
		add(name, FindingConfMode, ProblemArgs{Mode: fmt.Sprintf("%04o", m)}, "Its mode is %04o instead of exactly 0600, so Tails would disable it and activate no feature.", m)
		ok = false
	}
	fd, err := unix.Openat(rootfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			add(name, FindingConfNotRoot, ProblemArgs{Detail: err.Error()}, "It cannot be read (%v); run the check as root.", err)
		} else {
			add(name, FindingConfUnopenable, ProblemArgs{Detail: err.Error()}, "It cannot be opened (%v).", err)
		}
		return nil, false
	}
	defer unix.Close(fd)
	if acl, err := readACL(fd, ACLXattrAccess); err != nil {
		add(name, FindingConfACLUnreadable, ProblemArgs{Detail: err.Error()}, "Its ACL cannot be read (%v).", err)
		ok = false
	} else if acl != nil {
		add(name, FindingConfACL, ProblemArgs{ACL: FormatACL(acl)}, "It has an ACL (%s), so Tails would disable it and activate no feature.", FormatACL(acl))
		ok = false
	}
	data, err := ReadFileAt(rootfd, name, maxConfSize+1)
	if err != nil {
		add(name, FindingConfUnreadable, ProblemArgs{Detail: err.Error()}, "It cannot be read (%v).", err)
		return nil, false
	}
	bindings, err = ParsePersistenceConf(bytes.NewReader(data))
	if err != nil {
		var ce *ConfError
		if errors.As(err, &ce) {
			add(name, FindingConfLine, ProblemArgs{Line: ce.Line, Detail: ce.Reason}, "Line %d is invalid: %s.", ce.Line, ce.Reason)
		} else {
			add(name, FindingConfUnparsable, ProblemArgs{Detail: err.Error()}, "It cannot be parsed (%v).", err)
		}
		return nil, false
	}
	return bindings, ok
}

// owner is a file's owner as "uid:gid".
func owner(st unix.Stat_t) string { return fmt.Sprintf("%d:%d", st.Uid, st.Gid) }

// typeName says what kind of file mode is, with an article: "a symbolic link".
func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a folder"
	case unix.S_IFLNK:
		return "a symbolic link"
	case unix.S_IFIFO:
		return "a named pipe"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	}
	return "a special file"
}
