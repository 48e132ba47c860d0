package tails

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// ReadMarkerIn reads the marker at the root of the Persistent Storage mounted at dir, refusing
// a symlink or anything but a small regular file.
//
// The root is opened O_PATH, never for reading: a Tails root is root:root 0770 with the ACL
// user:amnesia:--x (PersistenceRootACL), which lets amnesia reach a file by its name but not
// open the folder itself.
//
// present is false when there is no marker; err then says why dir could not be looked into,
// and is nil when dir simply holds no marker. When present, err says why the marker cannot be
// used (a symlink, not a small regular file, invalid, ErrMarkerFormat).
func ReadMarkerIn(dir string) (m Marker, present bool, err error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Marker{}, false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	data, err := ReadFileAt(fd, MarkerName, maxMarkerSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Marker{}, false, nil
	case err != nil:
		return Marker{}, true, err
	}
	m, err = ParseMarker(bytes.NewReader(data))
	return m, true, err
}
