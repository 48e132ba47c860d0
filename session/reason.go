package session

import (
	"errors"
	"io/fs"
	"os"
)

// Reason is the reason of err in words, for a message a person reads that already names what
// failed: an *fs.PathError, *os.SyscallError or *os.LinkError in its chain is reduced to its
// bare cause ("permission denied", not "open /x/y: permission denied", which repeats the path
// and shows a system call's name). Other errors are said as they are. The full chain belongs in
// the --verbose log.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var (
		pe *fs.PathError
		se *os.SyscallError
		le *os.LinkError
	)
	switch {
	case errors.As(err, &pe):
		return Reason(pe.Err)
	case errors.As(err, &le):
		return Reason(le.Err)
	case errors.As(err, &se):
		return Reason(se.Err)
	}
	return err.Error()
}
