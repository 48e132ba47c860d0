module tails-backup

go 1.26.0

require (
	github.com/esiqveland/notify v0.13.3
	github.com/godbus/dbus/v5 v5.2.4
	github.com/leonelquinteros/gotext v1.7.2
	github.com/sirupsen/logrus v1.10.2
	golang.org/x/sys v0.49.0
)
