package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// stickSpeed is what stick-speed prints: the speeds of a whole block device, by O_DIRECT
// requests that the page cache does not absorb.
type stickSpeed struct {
	SeqWriteMBps  float64 `json:"seq_write_mbps"`
	RandWriteIOPS float64 `json:"rand_write_iops"`
	SeqReadMBps   float64 `json:"seq_read_mbps"`
	RandReadIOPS  float64 `json:"rand_read_iops"`
}

// stickSpeedCmd measures a blank stick (its data is overwritten): sequential writes and reads
// of 1 MiB requests, random writes and reads of 4 KiB, each O_DIRECT, and prints them as JSON.
//
//	stick-speed [--mib N] [--random N] DEVICE
func stickSpeedCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("stick-speed", flag.ContinueOnError)
	mib := fs.Int("mib", 64, "MiB written and read sequentially")
	random := fs.Int("random", 300, "random 4 KiB requests written and read")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: stick-speed [--mib N] [--random N] DEVICE")
	}
	fd, err := unix.Open(fs.Arg(0), unix.O_RDWR|unix.O_DIRECT|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", fs.Arg(0), err)
	}
	defer unix.Close(fd)
	// mmap gives the page-aligned buffer O_DIRECT needs.
	buf, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	rnd := rand.New(rand.NewPCG(7, 7))
	for i := range buf {
		buf[i] = byte(rnd.Uint32())
	}
	span := int64(*mib) << 20
	offsets := make([]int64, *random)
	for i := range offsets {
		offsets[i] = rnd.Int64N(span>>12) << 12
	}
	timed := func(what string, fn func() error) (time.Duration, error) {
		t := time.Now()
		if err := fn(); err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return time.Since(t), ctx.Err()
	}
	var s stickSpeed
	d, err := timed("sequential write", func() error {
		for off := int64(0); off < span; off += 1 << 20 {
			if _, err := unix.Pwrite(fd, buf, off); err != nil {
				return err
			}
		}
		return unix.Fdatasync(fd)
	})
	if err != nil {
		return err
	}
	s.SeqWriteMBps = float64(span) / d.Seconds() / 1e6
	if d, err = timed("random write", func() error {
		for _, off := range offsets {
			if _, err := unix.Pwrite(fd, buf[:4096], off); err != nil {
				return err
			}
		}
		return unix.Fdatasync(fd)
	}); err != nil {
		return err
	}
	s.RandWriteIOPS = float64(len(offsets)) / d.Seconds()
	if d, err = timed("sequential read", func() error {
		for off := int64(0); off < span; off += 1 << 20 {
			if _, err := unix.Pread(fd, buf, off); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	s.SeqReadMBps = float64(span) / d.Seconds() / 1e6
	if d, err = timed("random read", func() error {
		for _, off := range offsets {
			if _, err := unix.Pread(fd, buf[:4096], off); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	s.RandReadIOPS = float64(len(offsets)) / d.Seconds()
	return json.NewEncoder(os.Stdout).Encode(s)
}
