package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"

	"tails-backup/udisks"
)

// driveState is what wait-drive prints: how udisks sees the drive with that serial.
type driveState struct {
	Present   bool   `json:"present"`
	Device    string `json:"device,omitempty"`    // whole disk, /dev/sdX
	Tails     bool   `json:"tails"`               // it has a TailsData partition
	LUKSUUID  string `json:"luks_uuid,omitempty"` // of the TailsData partition
	Unlocked  bool   `json:"unlocked"`
	MountedAt string `json:"mounted_at,omitempty"`
	Removable bool   `json:"removable"`
}

// waitDrive watches udisks (its D-Bus signals) until the drive whose serial is SERIAL is in
// the state asked, and prints that state as JSON:
//
//	wait-drive [--timeout D] --serial SERIAL present|absent|locked|unlocked|mounted|any
func waitDrive(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("wait-drive", flag.ContinueOnError)
	serial := fs.String("serial", "", "the drive's serial")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *serial == "" {
		return errors.New("usage: wait-drive [--timeout D] --serial SERIAL present|absent|locked|unlocked|mounted|any")
	}
	want := fs.Arg(0)
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var last driveState
	_, err = udisks.New(conn, udisks.Options{}).WaitFor(ctx, func(s *udisks.Snapshot) (bool, error) {
		last = stateOf(s, *serial)
		switch want {
		case "any":
			return true, nil
		case "present":
			return last.Present && last.Device != "", nil
		case "absent":
			return !last.Present, nil
		case "locked":
			return last.Present && last.Tails && !last.Unlocked, nil
		case "unlocked":
			return last.Unlocked, nil
		case "mounted":
			return last.MountedAt != "", nil
		}
		return false, fmt.Errorf("unknown state %q", want)
	})
	b, _ := json.Marshal(last)
	fmt.Println(string(b))
	if err != nil {
		return fmt.Errorf("drive %s not %s: %w", *serial, want, err)
	}
	return nil
}

func stateOf(s *udisks.Snapshot, serial string) driveState {
	var st driveState
	for _, o := range s.Objects() {
		if o.Drive == nil || o.Drive.Serial != serial {
			continue
		}
		st.Present, st.Removable = true, o.Drive.Removable
		disk := s.Disk(o.Path)
		if disk == nil {
			return st
		}
		st.Device = disk.Block.Device
		for _, p := range s.Partitions(disk.Path) {
			if !udisks.IsTailsData(p) {
				continue
			}
			st.Tails, st.LUKSUUID = true, p.Block.IdUUID
			if ct := s.Cleartext(p.Path); ct != nil {
				st.Unlocked = true
				if ct.Filesystem != nil && len(ct.Filesystem.MountPoints) > 0 {
					st.MountedAt = ct.Filesystem.MountPoints[0]
				}
			}
		}
	}
	return st
}
