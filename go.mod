module tails-backup

go 1.26.0

require (
	github.com/esiqveland/notify v0.13.3 // indirect
	github.com/godbus/dbus/v5 v5.2.4 // indirect
	github.com/sirupsen/logrus v1.10.2 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
