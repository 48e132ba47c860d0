package agent

import (
	"context"

	"github.com/sirupsen/logrus"

	"tails-backup/clock"
)

// clockChanges returns the ClockChanges channel of c, or nil (never ready) when c cannot tell
// or the watch cannot start, which is logged: reminders then come late after a change.
func clockChanges(ctx context.Context, c clock.Clock, log *logrus.Entry) <-chan struct{} {
	n, ok := c.(clock.ClockChangeNotifier)
	if !ok {
		return nil
	}
	ch, err := n.ClockChanges(ctx)
	if err != nil {
		log.WithError(err).Warn("cannot watch the wall clock: a reminder may come late after it is set")
		return nil
	}
	return ch
}
