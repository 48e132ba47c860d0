package dbusapi

import (
	"time"

	"github.com/godbus/dbus/v5"
)

// The a{sv} records of docs/dbus-api.md, built from the Go values and read back (the Client).

type dict = map[string]dbus.Variant

func v(x any) dbus.Variant { return dbus.MakeVariant(x) }

// unix is a time in Unix seconds, 0 for the zero time.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

func encodeStatus(s Status, last map[string]Progress) dict {
	backups := make([]dict, 0, len(s.Backups))
	for _, b := range s.Backups {
		d := dict{
			"uuid":                 v(b.UUID),
			"name":                 v(b.Name),
			"paired":               v(unix(b.Paired)),
			"last_success":         v(unix(b.LastSuccess)),
			"last_attempt":         v(unix(b.LastAttempt)),
			"last_result":          v(b.LastResult),
			"last_message":         v(b.LastMessage),
			"age_text":             v(b.AgeText),
			"plugged":              v(b.Plugged),
			"passphrase_free":      v(b.PassphraseFree),
			"passphrase_free_next": v(b.PassphraseFreeNext),
		}
		if b.Plugged {
			d["device"] = v(b.Device)
		}
		backups = append(backups, d)
	}
	job := dict{}
	if j := s.Job; j != nil {
		job["id"] = v(j.ID)
		job["kind"] = v(j.Kind)
		job["backup"] = v(j.Backup)
		job["device"] = v(j.Device)
		job["automatic"] = v(j.Automatic)
		p := Progress{Fraction: -1, SecondsLeft: -1}
		if j.Progress != nil {
			p = *j.Progress
		} else if lp, ok := last[j.ID]; ok {
			p = lp
		}
		for k, x := range encodeProgress(p) {
			job[k] = x
		}
	}
	return dict{
		"is_backup":            v(s.IsBackup),
		"persistent_storage":   v(s.PersistentStorage),
		"backups":              v(backups),
		"reminders_enabled":    v(s.RemindersEnabled),
		"reminder_period_days": v(s.ReminderPeriodDays),
		"snoozed_until":        v(unix(s.SnoozedUntil)),
		"next_reminder":        v(unix(s.NextReminder)),
		"reminder_text":        v(s.ReminderText),
		"paused":               v(s.Paused),
		"paused_text":          v(s.PausedText),
		"job":                  v(job),
	}
}

func encodeProgress(p Progress) dict {
	return dict{
		"fraction":          v(p.Fraction),
		"text":              v(p.Text),
		"step":              v(p.Step),
		"seconds_left":      v(p.SecondsLeft),
		"cancellable":       v(p.Cancellable),
		"waiting_for_stick": v(p.WaitingForStick),
	}
}

func encodeSticks(sticks []StickInfo) []dict {
	out := make([]dict, 0, len(sticks))
	for _, s := range sticks {
		d := dict{
			"device":         v(s.Device),
			"name":           v(s.Name),
			"size":           v(s.Size),
			"size_text":      v(s.SizeText),
			"usable":         v(s.Usable),
			"paired":         v(s.Paired),
			"backup_of_this": v(s.BackupOfThis),
		}
		if s.Reason != "" {
			d["reason"] = v(s.Reason)
		}
		if s.Erase != nil {
			d["erase"] = v(s.Erase)
		}
		if s.Confirm != "" {
			d["confirm"] = v(s.Confirm)
		}
		out = append(out, d)
	}
	return out
}

// choice is a Choice as D-Bus sends it: (ss).
type choice struct {
	ID    string
	Label string
}

func encodeQuestion(q Question) dict {
	choices := make([]choice, 0, len(q.Choices))
	for _, c := range q.Choices {
		choices = append(choices, choice(c))
	}
	return dict{
		"title":       v(q.Title),
		"body":        v(q.Body),
		"choices":     v(choices),
		"destructive": v(q.Destructive),
	}
}

func encodeResult(r Result) dict {
	d := dict{}
	if r.Backup != "" {
		d["backup"] = v(r.Backup)
	}
	if r.Differences != nil {
		diffs := make([]dict, 0, len(r.Differences))
		for _, x := range r.Differences {
			diffs = append(diffs, dict{"path": v(x.Path), "change": v(x.Change), "text": v(x.Text)})
		}
		d["differences"] = v(diffs)
	}
	if r.Checks != nil {
		checks := make([]dict, 0, len(r.Checks))
		for _, x := range r.Checks {
			checks = append(checks, dict{"name": v(x.Name), "ok": v(x.OK), "text": v(x.Text)})
		}
		d["checks"] = v(checks)
	}
	return d
}

// get reads a key of a record into a Go value of its type; a missing key or a value of another
// type leaves the zero value, as docs/dbus-api.md asks of the app.
func get[T any](d dict, key string) T {
	var zero T
	x, ok := d[key]
	if !ok {
		return zero
	}
	if t, ok := x.Value().(T); ok {
		return t
	}
	return zero
}

func dicts(d dict, key string) []dict {
	x, ok := d[key]
	if !ok {
		return nil
	}
	var out []dict
	if err := x.Store(&out); err != nil {
		return nil
	}
	if out == nil {
		out = []dict{}
	}
	return out
}

func decodeStatus(d dict) Status {
	s := Status{
		IsBackup:           get[bool](d, "is_backup"),
		PersistentStorage:  get[bool](d, "persistent_storage"),
		RemindersEnabled:   get[bool](d, "reminders_enabled"),
		ReminderPeriodDays: get[uint32](d, "reminder_period_days"),
		SnoozedUntil:       fromUnix(get[int64](d, "snoozed_until")),
		NextReminder:       fromUnix(get[int64](d, "next_reminder")),
		ReminderText:       get[string](d, "reminder_text"),
		Paused:             get[bool](d, "paused"),
		PausedText:         get[string](d, "paused_text"),
	}
	for _, b := range dicts(d, "backups") {
		s.Backups = append(s.Backups, Backup{
			UUID:               get[string](b, "uuid"),
			Name:               get[string](b, "name"),
			Paired:             fromUnix(get[int64](b, "paired")),
			LastSuccess:        fromUnix(get[int64](b, "last_success")),
			LastAttempt:        fromUnix(get[int64](b, "last_attempt")),
			LastResult:         get[string](b, "last_result"),
			LastMessage:        get[string](b, "last_message"),
			AgeText:            get[string](b, "age_text"),
			Plugged:            get[bool](b, "plugged"),
			Device:             get[string](b, "device"),
			PassphraseFree:     get[bool](b, "passphrase_free"),
			PassphraseFreeNext: get[bool](b, "passphrase_free_next"),
		})
	}
	if x, ok := d["job"]; ok {
		var j dict
		if x.Store(&j) == nil && len(j) > 0 {
			p := decodeProgress(j)
			s.Job = &Job{
				ID:        get[string](j, "id"),
				Kind:      get[string](j, "kind"),
				Backup:    get[string](j, "backup"),
				Device:    get[string](j, "device"),
				Automatic: get[bool](j, "automatic"),
				Progress:  &p,
			}
		}
	}
	return s
}

func decodeProgress(d dict) Progress {
	return Progress{
		Fraction:        get[float64](d, "fraction"),
		Text:            get[string](d, "text"),
		Step:            get[string](d, "step"),
		SecondsLeft:     get[int64](d, "seconds_left"),
		Cancellable:     get[bool](d, "cancellable"),
		WaitingForStick: get[bool](d, "waiting_for_stick"),
	}
}

func decodeSticks(ds []dict) []StickInfo {
	out := make([]StickInfo, 0, len(ds))
	for _, d := range ds {
		out = append(out, StickInfo{
			Device:       get[string](d, "device"),
			Name:         get[string](d, "name"),
			Size:         get[uint64](d, "size"),
			SizeText:     get[string](d, "size_text"),
			Usable:       get[bool](d, "usable"),
			Reason:       get[string](d, "reason"),
			Paired:       get[bool](d, "paired"),
			BackupOfThis: get[bool](d, "backup_of_this"),
			Erase:        get[[]string](d, "erase"),
			Confirm:      get[string](d, "confirm"),
		})
	}
	return out
}

func decodeQuestion(id string, d dict) Question {
	q := Question{
		ID:          id,
		Title:       get[string](d, "title"),
		Body:        get[string](d, "body"),
		Destructive: get[string](d, "destructive"),
	}
	if x, ok := d["choices"]; ok {
		var cs []choice
		if x.Store(&cs) == nil {
			for _, c := range cs {
				q.Choices = append(q.Choices, Choice(c))
			}
		}
	}
	return q
}

func decodeResult(result, text string, d dict) Result {
	r := Result{Result: result, Text: text, Backup: get[string](d, "backup")}
	if ds := dicts(d, "differences"); ds != nil {
		r.Differences = []Difference{}
		for _, x := range ds {
			r.Differences = append(r.Differences, Difference{
				Path: get[string](x, "path"), Change: get[string](x, "change"), Text: get[string](x, "text"),
			})
		}
	}
	if ds := dicts(d, "checks"); ds != nil {
		r.Checks = []Check{}
		for _, x := range ds {
			r.Checks = append(r.Checks, Check{
				Name: get[string](x, "name"), OK: get[bool](x, "ok"), Text: get[string](x, "text"),
			})
		}
	}
	return r
}
