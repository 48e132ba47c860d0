package notify

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// firstKeepingShell is the first GNOME Shell whose banner keeps its buttons when its
// notification is replaced in place: 46 rewrote the notifications (Notification.clearActions
// and addAction emit action-removed and action-added, which the banner follows; 48 seen).
const firstKeepingShell = 46

// ReplaceKeepsButtons tells whether a server that answered info to GetServerInformation keeps
// the buttons of a banner on screen when its notification is replaced in place.
//
// GNOME Shell 43 (Tails 6) does not: its daemon's _notifyForSource calls
// notification.update(…, {clear: true}), which empties notification.actions and emits
// 'updated'; the banner on screen (NotificationBanner._onUpdated) removes its action area and
// adds the actions it finds, none; the daemon's notification.addAction then only pushes to
// notification.actions and emits nothing, so the banner shows no button until the shell makes
// a new banner of it. 44 and 45 have the same code; any other server, or one that did not
// answer, is taken to follow the specification.
func ReplaceKeepsButtons(info ServerInfo) bool {
	if info.Name != "gnome-shell" {
		return true
	}
	major, _, _ := strings.Cut(info.Version, ".")
	v, err := strconv.Atoi(major)
	return err != nil || v >= firstKeepingShell
}

// ServerInfo is the current server's answer to GetServerInformation, read when the server
// appeared; zero when there is none or it did not answer.
func (n *Notifier) ServerInfo() ServerInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.info
}

// ProgressIDs are the notifications that show one progress (see ShowProgress); the zero value
// is none.
type ProgressIDs struct {
	// Banner is the notification with the buttons.
	Banner uint32
	// List, on a server that drops the buttons of a replaced banner, is the entry of the
	// notification list that shows the progress; 0 elsewhere.
	List uint32
}

// IDs are the notifications shown, Banner first, without zeros.
func (p ProgressIDs) IDs() []uint32 {
	var ids []uint32
	for _, id := range []uint32{p.Banner, p.List} {
		if id != 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// ShowProgress shows note, the progress of a long task with its buttons (Cancel), in place of
// prev (zero: a new one), and returns the notifications that show it now.
//
// Where a replaced banner keeps its buttons (ReplaceKeepsButtons), that is one notification
// replaced in place. Elsewhere (GNOME Shell 43) the buttons on screen must never be replaced:
// a new progress shows as two notifications. The banner has note's title and buttons, with
// steadyBody, a text that stays true while the task goes on (where to see the progress), and
// is transient: it stays on screen as long as the shell shows a banner, is never replaced (so
// its buttons keep working), and leaves no entry in the list behind it (the shell closes it,
// NotificationClosed with ReasonExpired, when its banner goes). The list entry has note's
// title, text and default action, low urgency (the shell shows it in the list only, never as
// a banner: no banner storm) and is replaced in place at every step: the shell's list has no
// buttons to lose. A click on it invokes the default action (open the app, where Cancel is).
func (n *Notifier) ShowProgress(ctx context.Context, prev ProgressIDs, note Notification, steadyBody string) (ProgressIDs, error) {
	if ReplaceKeepsButtons(n.ServerInfo()) {
		id, err := n.Replace(ctx, prev.Banner, note)
		if err != nil {
			return prev, err
		}
		return ProgressIDs{Banner: id}, nil
	}
	next := prev
	if prev.Banner == 0 {
		banner := note
		banner.Body, banner.BodyIsMarkup = steadyBody, false
		banner.Transient = true
		banner.HasProgress = false
		id, err := n.Show(ctx, banner)
		if err != nil {
			return prev, fmt.Errorf("notify: show the banner of a progress: %w", err)
		}
		next.Banner = id
	}
	entry := note
	entry.Actions = nil
	for _, a := range note.Actions {
		if a.Key == DefaultActionKey {
			entry.Actions = append(entry.Actions, a)
		}
	}
	entry.Urgency = UrgencyLow
	id, err := n.Replace(ctx, prev.List, entry)
	if err != nil {
		return next, fmt.Errorf("notify: show the progress in the notification list: %w", err)
	}
	next.List = id
	return next, nil
}
