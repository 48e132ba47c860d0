package udev_test

import (
	"context"
	"errors"
	"fmt"

	"tails-backup/udev"
)

// The consumer shape: open the monitor first, enumerate, then receive; after an
// overflow, enumerate again, as events were lost.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mon, err := udev.Open(udev.Config{Matches: []udev.Match{{Subsystem: "block", DevType: "partition"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mon.Close()
	events := make(chan udev.Event)
	go func() {
		defer close(events)
		for {
			devices, err := udev.Enumerator{}.BlockDevices(ctx)
			if err != nil {
				return
			}
			for _, d := range devices {
				if d.PartEntryName() == "TailsData" {
					fmt.Println("present:", d.DevName)
				}
			}
			if err := mon.Run(ctx, events); !errors.Is(err, udev.ErrOverflow) {
				return
			}
		}
	}()
	for ev := range events {
		if ev.Action == udev.ActionAdd && ev.PartEntryName() == "TailsData" {
			fmt.Println("plugged:", ev.DevName)
		}
	}
}
