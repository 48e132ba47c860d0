package dbusapitest

import (
	"context"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/sirupsen/logrus"

	"tails-backup/dbusapi"
	"tails-backup/notify/notifytest"
)

// Served is a Backend served on a private session bus, with a client on another connection.
type Served struct {
	Bus     *notifytest.Bus
	Service *dbusapi.Service
	Client  *dbusapi.Client
	Conn    *dbus.Conn // the client's connection
}

// Connect opens a private connection to the bus at address, closed in t.Cleanup.
func Connect(t testing.TB, address string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(address)
	if err != nil {
		t.Fatalf("dbusapitest: connect to %s: %v", address, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Serve starts a private session bus, serves backend on it (its events sent to the Service
// through relay) and connects a client; everything stops in t.Cleanup.
func Serve(t testing.TB, ctx context.Context, backend dbusapi.Backend, relay *dbusapi.Relay, log *logrus.Entry) *Served {
	t.Helper()
	bus := notifytest.StartBus(t)
	sconn := Connect(t, bus.Address())
	svc, err := dbusapi.Serve(ctx, sconn, backend, log)
	if err != nil {
		t.Fatalf("dbusapitest: serve: %v", err)
	}
	relay.SetSink(svc)
	t.Cleanup(func() {
		relay.SetSink(nil)
		svc.Close()
	})
	cconn := Connect(t, bus.Address())
	return &Served{Bus: bus, Service: svc, Client: dbusapi.NewClient(cconn, 10*time.Second), Conn: cconn}
}
