//go:build linux

package helper

import (
	"context"
	"path"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"tails-backup/internal/beneath"
	tbsync "tails-backup/sync"
	"tails-backup/tails"
	"tails-backup/wire"
)

// MaxChangeEvents bounds the change events of one verify, so that a backup that differs in
// every file cannot flood the session; Report.ChangesNotListed counts the others.
const MaxChangeEvents = 10000

// VerifyOptions tunes VerifyTrees.
type VerifyOptions struct {
	// Checksum compares the content of regular files of equal size and mtime.
	Checksum bool
	// Exclude lists paths, relative to the roots, that are not compared.
	Exclude []string
	// MaxChanges bounds the change events; 0 means MaxChangeEvents.
	MaxChanges int64
	Log        *logrus.Entry
}

// VerifyTrees compares the tree open as srcfd with the one open as dstfd without writing
// anything, as a dry-run mirror of src onto dst (sync.MirrorFDs: the descriptors, not their
// paths, so what was checked is what is compared): it calls emit with one progress event of
// phase PhaseChange per difference (at most MaxChanges), then one of phase PhaseProblem per
// problem CheckPersistentStorage finds in dst. The report counts the differences and problems.
// The error is the mirror's: the comparison could not run to its end.
func VerifyTrees(ctx context.Context, srcfd, dstfd int, opts VerifyOptions, emit func(wire.Event)) (*wire.Report, error) {
	limit := opts.MaxChanges
	if limit <= 0 {
		limit = MaxChangeEvents
	}
	var listed, unlisted atomic.Int64
	onChange := func(c tbsync.Change) {
		if listed.Load() >= limit {
			unlisted.Add(1)
			return
		}
		listed.Add(1)
		fd := srcfd
		if c.Kind == tbsync.ChangeDelete {
			fd = dstfd
		}
		typ := entryType(fd, c.Path)
		if typ == "" {
			typ = "f"
			if c.Dir {
				typ = "d"
			}
		}
		emit(wire.Event{Event: wire.EventProgress, Phase: wire.PhaseChange, Path: c.Path, Kind: string(c.Kind), What: c.What, Type: typ})
	}
	rep, err := tbsync.MirrorFDs(ctx, srcfd, dstfd, tbsync.Options{
		DryRun: true,
		NoSync: true,
		// The roots' own owner, mode and ACL are not compared: Tails 7 changes the backup's as
		// soon as amnesia mounts it (setfacl -m user:amnesia:rx, see tails.MountedRootACL),
		// and a restore keeps this Tails' own. CheckPersistentStorage below checks the
		// backup's root against the rules Tails applies at boot instead.
		KeepDestinationRoot: true,
		Checksum:            opts.Checksum,
		Exclude:             opts.Exclude,
		OnChange:            onChange,
		Log:                 opts.Log,
	})
	if err != nil {
		return nil, err
	}
	out := toReport(rep)
	out.BytesCopied = 0 // nothing was copied; the differences are in the counts
	out.ChangesNotListed = unlisted.Load()

	problems, features := tails.CheckPersistentStorage(dstfd)
	for _, p := range problems {
		if p.Warning {
			out.Warnings++
		} else {
			out.Problems++
		}
		emit(wire.ProblemEvent(p))
	}
	for _, f := range features {
		out.Features = append(out.Features, f.Name)
	}
	return out, nil
}

// entryType is the type letter (f, d, L, D, S) of the entry rel under the root open as rootfd,
// looked up without following any symlink and without leaving the root; "" if it cannot be.
func entryType(rootfd int, rel string) string {
	if rel == "." || rel == "" {
		return "d"
	}
	dir, name := path.Split(rel)
	dirfd := rootfd
	if dir != "" {
		fd, err := beneath.Open(rootfd, path.Clean(dir), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return ""
		}
		defer unix.Close(fd)
		dirfd = fd
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return ""
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "f"
	case unix.S_IFDIR:
		return "d"
	case unix.S_IFLNK:
		return "L"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "D"
	}
	return "S"
}

// verify compares this Tails' Persistent Storage with its backup and checks the backup's,
// writing nothing: the differences and the problems go out as progress events.
func (o *operation) verify(src, dst *root) (*wire.Report, *Failure) {
	prev, present, err := readMarker(dst.fd)
	if !present || err != nil || prev.Source != src.uuid {
		return nil, markerFailure(dst, prev, present, err)
	}
	if o.ctx.Err() != nil {
		return nil, cancelled(o.ctx)
	}
	exclude := mirrorExcludes(o.req.Skip)
	rep, err := VerifyTrees(o.ctx, src.fd, dst.fd, VerifyOptions{
		Checksum: o.req.Checksum,
		Exclude:  exclude,
		Log:      o.log,
	}, o.out.write)
	if err != nil {
		return nil, o.mirrorFailure(err, dst)
	}
	o.log.WithFields(logrus.Fields{"created": rep.Created, "updated": rep.Updated, "metadata": rep.MetadataOnly,
		"deleted": rep.Deleted, "problems": rep.Problems, "errors": rep.ErrorCount, "checksum": o.req.Checksum}).Info("verify complete")
	return rep, nil
}
