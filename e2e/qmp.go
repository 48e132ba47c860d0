package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
)

// QMP is a client of QEMU's machine protocol on a unix socket: commands with their answers,
// and the events, which waiters receive.
type QMP struct {
	conn net.Conn
	enc  *json.Encoder

	mu      sync.Mutex
	nextID  uint64
	pending map[string]chan qmpReply
	waiters map[chan qmpEvent]func(qmpEvent) bool
	err     error
	done    chan struct{}
}

type qmpReply struct {
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
}

type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

// DialQMP connects to the QMP socket at path and negotiates capabilities.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to QMP %s: %w", path, err)
	}
	q := &QMP{conn: conn, enc: json.NewEncoder(conn), pending: map[string]chan qmpReply{},
		waiters: map[chan qmpEvent]func(qmpEvent) bool{}, done: make(chan struct{})}
	r := bufio.NewReader(conn)
	if _, err := r.ReadBytes('\n'); err != nil { // the greeting
		conn.Close()
		return nil, fmt.Errorf("read the QMP greeting: %w", err)
	}
	go q.read(r)
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		conn.Close()
		return nil, err
	}
	return q, nil
}

func (q *QMP) read(r *bufio.Reader) {
	defer close(q.done)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			q.mu.Lock()
			q.err = fmt.Errorf("QMP connection: %w", err)
			for _, ch := range q.pending {
				close(ch)
			}
			q.pending = map[string]chan qmpReply{}
			q.mu.Unlock()
			return
		}
		var msg struct {
			ID json.RawMessage `json:"id"`
			qmpReply
			qmpEvent
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			continue
		}
		q.mu.Lock()
		if msg.Event != "" {
			for ch, match := range q.waiters {
				if match(msg.qmpEvent) {
					select {
					case ch <- msg.qmpEvent:
					default:
					}
				}
			}
		} else if ch, ok := q.pending[string(msg.ID)]; ok {
			delete(q.pending, string(msg.ID))
			ch <- msg.qmpReply
		}
		q.mu.Unlock()
	}
}

// Execute runs a QMP command and returns its "return" value.
func (q *QMP) Execute(ctx context.Context, cmd string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return nil, q.err
	}
	q.nextID++
	id := fmt.Sprintf("%d", q.nextID)
	ch := make(chan qmpReply, 1)
	q.pending[`"`+id+`"`] = ch
	msg := map[string]any{"execute": cmd, "id": id}
	if args != nil {
		msg["arguments"] = args
	}
	err := q.enc.Encode(msg)
	q.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("send QMP %s: %w", cmd, err)
	}
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("QMP %s: %w", cmd, ctx.Err())
	case r, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("QMP %s: %w", cmd, q.err)
		}
		if r.Error != nil {
			return nil, fmt.Errorf("QMP %s: %s: %s", cmd, r.Error.Class, r.Error.Desc)
		}
		return r.Return, nil
	}
}

// watch registers a waiter for events that match; cancel removes it.
func (q *QMP) watch(match func(qmpEvent) bool) (ch chan qmpEvent, cancel func()) {
	ch = make(chan qmpEvent, 4)
	q.mu.Lock()
	q.waiters[ch] = match
	q.mu.Unlock()
	return ch, func() {
		q.mu.Lock()
		delete(q.waiters, ch)
		q.mu.Unlock()
	}
}

// USBStick is what PlugUSBStick attaches.
type USBStick struct {
	ID, File, Serial string
	// Format is the image's format: "raw" (the default), or "qcow2" for an overlay whose
	// backing file is a stick's image, which takes the writes and leaves the image as it is.
	Format string
	// WriteBps, if not 0, limits the writes to that many bytes per second, as a real flash
	// stick does (QEMU's throttle filter, in a throttle group of its own).
	WriteBps int64
	// WriteIOPS, ReadBps and ReadIOPS, if not 0, limit the write requests per second, the
	// bytes read per second and the read requests per second the same way (make e2e-bench).
	WriteIOPS, ReadBps, ReadIOPS int64
}

// throttled tells whether st has a throttle group.
func (st USBStick) throttled() bool {
	return st.WriteBps > 0 || st.WriteIOPS > 0 || st.ReadBps > 0 || st.ReadIOPS > 0
}

// throttleLimits are the limits of st's throttle group, as QEMU's ThrottleLimits names them.
func (st USBStick) throttleLimits() map[string]any {
	limits := map[string]any{}
	for name, v := range map[string]int64{"bps-write": st.WriteBps, "iops-write": st.WriteIOPS,
		"bps-read": st.ReadBps, "iops-read": st.ReadIOPS} {
		if v > 0 {
			limits[name] = v
		}
	}
	return limits
}

// PlugUSBStick attaches the image as a removable USB stick with that serial on the xhci
// controller: blockdev-add (through a throttle filter if a limit is set), then device_add
// usb-storage.
func (q *QMP) PlugUSBStick(ctx context.Context, st USBStick) error {
	node := "node-" + st.ID
	format := st.Format
	if format == "" {
		format = "raw"
	}
	dev := map[string]any{"driver": format, "file": map[string]any{"driver": "file", "filename": st.File}}
	if st.throttled() {
		group := "tg-" + st.ID
		if _, err := q.Execute(ctx, "object-add", map[string]any{
			"qom-type": "throttle-group", "id": group, "limits": st.throttleLimits(),
		}); err != nil {
			return err
		}
		dev = map[string]any{"driver": "throttle", "throttle-group": group, "file": dev}
	}
	dev["node-name"] = node
	if _, err := q.Execute(ctx, "blockdev-add", dev); err != nil {
		q.delThrottle(ctx, st)
		return err
	}
	if _, err := q.Execute(ctx, "device_add", map[string]any{
		"driver": "usb-storage", "bus": "xhci.0", "drive": node, "id": st.ID,
		"serial": st.Serial, "removable": true,
	}); err != nil {
		q.Execute(ctx, "blockdev-del", map[string]any{"node-name": node})
		q.delThrottle(ctx, st)
		return err
	}
	return nil
}

// delThrottle removes the throttle group of st, if it has one.
func (q *QMP) delThrottle(ctx context.Context, st USBStick) error {
	if !st.throttled() {
		return nil
	}
	_, err := q.Execute(ctx, "object-del", map[string]any{"id": "tg-" + st.ID})
	return err
}

// UnplugUSBStick pulls the stick: device_del, waiting for DEVICE_DELETED, then blockdev-del
// (and the throttle group's removal).
func (q *QMP) UnplugUSBStick(ctx context.Context, st USBStick) error {
	if err := q.deleteDevice(ctx, st.ID); err != nil {
		return err
	}
	if _, err := q.Execute(ctx, "blockdev-del", map[string]any{"node-name": "node-" + st.ID}); err != nil {
		return err
	}
	return q.delThrottle(ctx, st)
}

// BlockStats are the counters of what the guest asked of a stick since it was plugged: the
// bytes and requests written and read, as QEMU's block layer counts them (query-blockstats).
type BlockStats struct {
	WrBytes      int64 `json:"wr_bytes"`
	WrOperations int64 `json:"wr_operations"`
	RdBytes      int64 `json:"rd_bytes"`
	RdOperations int64 `json:"rd_operations"`
	FlushOps     int64 `json:"flush_operations"`
}

// StickStats returns the counters of the plugged stick st: those of the block backend of its
// usb-storage device, whose root node PlugUSBStick named (its throttle filter, if it has one):
// what the guest asked, before the format's own writes. QEMU counts requests on the backends
// only (query-nodes gives each node's highest offset, and zeros).
func (q *QMP) StickStats(ctx context.Context, st USBStick) (BlockStats, error) {
	raw, err := q.Execute(ctx, "query-blockstats", nil)
	if err != nil {
		return BlockStats{}, err
	}
	var nodes []struct {
		NodeName string     `json:"node-name"`
		Stats    BlockStats `json:"stats"`
	}
	if err := json.Unmarshal(raw, &nodes); err != nil {
		return BlockStats{}, fmt.Errorf("query-blockstats: %w", err)
	}
	for _, n := range nodes {
		if n.NodeName == "node-"+st.ID {
			return n.Stats, nil
		}
	}
	return BlockStats{}, fmt.Errorf("query-blockstats has no device on the node node-%s: is the stick %s plugged?", st.ID, st.ID)
}

// VirtioDisk is a disk on the guest's PCI bus: the Tails stick the simulated Tails runs from,
// whose serial (tails-boot) the guest's udev rules give Tails' boot device properties.
type VirtioDisk struct {
	ID, File, Serial string
	// Node is the block node added by PlugVirtioDisk, "" for the disk of QEMU's command line
	// (a -drive, which QEMU deletes itself with its device).
	Node string
}

// PlugVirtioDisk hot-plugs the raw image d.File as a virtio-blk-pci disk (PCI hot-plug by
// ACPI, which the i440fx machine offers and Debian's kernel handles), and sets d.Node.
func (q *QMP) PlugVirtioDisk(ctx context.Context, d *VirtioDisk) error {
	node := "node-" + d.ID
	if _, err := q.Execute(ctx, "blockdev-add", map[string]any{"node-name": node, "driver": "raw",
		"file": map[string]any{"driver": "file", "filename": d.File}}); err != nil {
		return err
	}
	if _, err := q.Execute(ctx, "device_add", map[string]any{
		"driver": "virtio-blk-pci", "drive": node, "id": d.ID, "serial": d.Serial,
	}); err != nil {
		q.Execute(ctx, "blockdev-del", map[string]any{"node-name": node})
		return err
	}
	d.Node = node
	return nil
}

// UnplugVirtioDisk removes the disk: device_del, which the guest acknowledges (ACPI eject),
// waiting for DEVICE_DELETED, then blockdev-del of the node PlugVirtioDisk added.
func (q *QMP) UnplugVirtioDisk(ctx context.Context, d *VirtioDisk) error {
	if err := q.deleteDevice(ctx, d.ID); err != nil {
		return err
	}
	if d.Node != "" {
		if _, err := q.Execute(ctx, "blockdev-del", map[string]any{"node-name": d.Node}); err != nil {
			return err
		}
		d.Node = ""
	}
	return nil
}

// deleteDevice runs device_del and waits for QEMU's DEVICE_DELETED of the device: the guest
// has let it go.
func (q *QMP) deleteDevice(ctx context.Context, id string) error {
	ch, cancel := q.watch(func(e qmpEvent) bool {
		if e.Event != "DEVICE_DELETED" {
			return false
		}
		var d struct {
			Device string `json:"device"`
		}
		json.Unmarshal(e.Data, &d)
		return d.Device == id
	})
	defer cancel()
	if _, err := q.Execute(ctx, "device_del", map[string]any{"id": id}); err != nil {
		return err
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return fmt.Errorf("wait for the removal of %s: %w", id, ctx.Err())
	case <-q.done:
		return errors.New("QEMU went away")
	}
	return nil
}

// Close closes the connection.
func (q *QMP) Close() error { return q.conn.Close() }
