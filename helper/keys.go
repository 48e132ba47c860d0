//go:build linux

package helper

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"tails-backup/tails"
)

// The keys that unlock this Tails' paired backups without their passphrase live in the folder
// tails.KeysDirName at the root of this Tails' Persistent Storage: root:root 0700, one file
// per backup LUKS UUID, root:root 0600. The Persistent Storage's root belongs to root and
// amnesia may only traverse it, so the session can neither read a key nor put anything in
// the folder's place. tails.MirrorExcludes keeps the folder out of updates, verify and
// restores.

// backupKeySize is the size of a backup's key: 512 random bits.
const backupKeySize = 64

// keyFileFormat is the version of the key file format.
const keyFileFormat = 1

// maxKeyFile bounds what is read of a key file.
const maxKeyFile = 4096

// keyFile is the content of a key file: the key, and the key slot and token it took on the
// backup (to remove exactly those).
type keyFile struct {
	Format  int       `json:"format"`
	Backup  string    `json:"backup"`
	KeySlot int       `json:"key_slot"`
	Token   int       `json:"token"`
	Created time.Time `json:"created"`
	Key     []byte    `json:"key"` // base64 in JSON
}

// errKeyMissing is a backup with no key file.
var errKeyMissing = errors.New("no key kept for this backup")

func keyFileName(uuid string) string { return uuid + ".key" }

// openKeysDir opens the key folder under the Persistent Storage root rootfd, making it when
// create is set; it makes sure it is root's alone. A symlink or file in its place is refused,
// never followed. A missing folder without create is errKeyMissing.
func openKeysDir(rootfd int, create bool) (int, error) {
	if create {
		if err := unix.Mkdirat(rootfd, tails.KeysDirName, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("make %s: %w", tails.KeysDirName, err)
		}
	}
	fd, err := openRootsDir(rootfd, tails.KeysDirName, nil)
	if errors.Is(err, unix.ENOENT) && !create {
		return -1, errKeyMissing
	}
	return fd, err
}

// openRootsDir opens the folder name under the folder dirfd and makes it root:root 0700 if it
// is not. A symlink or file in its place is refused, never followed. With dev set, a folder on
// another file system (a mount on it) is refused too.
func openRootsDir(dirfd int, name string, dev *uint64) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", name, err)
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	if err == nil && dev != nil && st.Dev != *dev {
		err = errors.New("not on the backup's file system")
	}
	if err == nil && (st.Uid != 0 || st.Gid != 0) {
		err = unix.Fchown(fd, 0, 0)
	}
	if err == nil && st.Mode&0o7777 != 0o700 {
		err = unix.Fchmod(fd, 0o700)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("make %s root's alone: %w", name, err)
	}
	return fd, nil
}

// writeKeyFile writes k for its backup atomically: a new file, root:root 0600, flushed, then
// renamed over the old one, and the folder flushed.
func writeKeyFile(dirfd int, k keyFile) error {
	data, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("encode the key file: %w", err)
	}
	defer clear(data)
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := fmt.Sprintf(".%s.tmp-%x", keyFileName(k.Backup), rnd)
	fd, err := unix.Openat(dirfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	err = unix.Fchown(fd, 0, 0)
	if err == nil {
		err = unix.Fchmod(fd, 0o600) // whatever the umask
	}
	if err == nil {
		err = writeAll(fd, data)
	}
	if err == nil {
		err = unix.Fsync(fd)
	}
	unix.Close(fd)
	if err == nil {
		err = unix.Renameat(dirfd, tmp, dirfd, keyFileName(k.Backup))
	}
	if err != nil {
		_ = shredAt(dirfd, tmp)
		return fmt.Errorf("write the key file: %w", err)
	}
	if err := unix.Fsync(dirfd); err != nil {
		return fmt.Errorf("flush %s: %w", tails.KeysDirName, err)
	}
	return nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// readKeyFile reads the key file of the backup uuid: errKeyMissing if there is none. A file
// that is not root's alone, or not a key file, is an error.
func readKeyFile(dirfd int, uuid string) (keyFile, error) {
	fd, err := unix.Openat(dirfd, keyFileName(uuid), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return keyFile{}, errKeyMissing
	}
	if err != nil {
		return keyFile{}, fmt.Errorf("open the key file: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return keyFile{}, fmt.Errorf("read the key file: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 0 || st.Mode&0o077 != 0 || st.Size > maxKeyFile {
		return keyFile{}, fmt.Errorf("the key file is not a root-only regular file of at most %d bytes", maxKeyFile)
	}
	buf := make([]byte, st.Size+1)
	defer clear(buf)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err != nil {
			return keyFile{}, fmt.Errorf("read the key file: %w", err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	var k keyFile
	if err := json.Unmarshal(buf[:n], &k); err != nil {
		return keyFile{}, fmt.Errorf("the key file is damaged: %w", err)
	}
	if k.Format != keyFileFormat || k.Backup != uuid || len(k.Key) != backupKeySize || k.KeySlot < 0 || k.KeySlot >= luksMaxKeyslots {
		clear(k.Key)
		return keyFile{}, fmt.Errorf("the key file is damaged or of another format")
	}
	return k, nil
}

// shredKeyFile overwrites the key file of the backup uuid and unlinks it; no file is not an
// error (removed tells).
func shredKeyFile(dirfd int, uuid string) (removed bool, err error) {
	err = shredAt(dirfd, keyFileName(uuid))
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := unix.Fsync(dirfd); err != nil {
		return true, fmt.Errorf("flush %s: %w", tails.KeysDirName, err)
	}
	return true, nil
}

// shredAt overwrites the regular file name with random bytes, flushes it, then unlinks it.
// ext4's journal (data=ordered writes no file data there) and a flash stick's wear levelling
// may keep old blocks; but the Persistent Storage is itself encrypted, so what is left is
// readable only by whoever can unlock it, who could read the key file anyway.
func shredAt(dirfd int, name string) error {
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Fstat(fd, &st)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size > 0 && st.Size <= 1<<20 {
		junk := make([]byte, st.Size)
		if _, err = rand.Read(junk); err == nil {
			if _, err = unix.Pwrite(fd, junk, 0); err == nil {
				err = unix.Fsync(fd)
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("overwrite %s: %w", name, err)
	}
	return unix.Unlinkat(dirfd, name, 0)
}
