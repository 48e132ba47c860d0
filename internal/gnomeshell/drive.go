package gnomeshell

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Notification is a notification in the shell's message tray, as a person sees it.
type Notification struct {
	Source  string   `json:"source"`
	Title   string   `json:"title"`
	Body    string   `json:"body"`
	Actions []string `json:"actions"` // the labels of its buttons, in order
}

// jsPrelude defines the helpers of the snippets below, for GNOME Shell 43 (imports) and 48
// (where imports still works for the gi modules and Main is in Eval's scope).
const jsPrelude = `
const Clutter = imports.gi.Clutter, GLib = imports.gi.GLib, St = imports.gi.St;
const tbNow = () => GLib.get_monotonic_time();
const tbSeat = () => (Clutter.get_default_backend ? Clutter.get_default_backend() : global.stage.context.get_backend()).get_default_seat();
const tbPointer = () => (globalThis._tbPointer ??= tbSeat().create_virtual_device(Clutter.InputDeviceType.POINTER_DEVICE));
const tbKeyboard = () => (globalThis._tbKeyboard ??= tbSeat().create_virtual_device(Clutter.InputDeviceType.KEYBOARD_DEVICE));
const tbBanner = () => Main.messageTray._banner ?? null;
const tbBox = a => { const [x, y] = a.get_transformed_position(), [w, h] = a.get_transformed_size(); return {x, y, w, h}; };
const tbFind = (a, f) => { if (f(a)) return a; for (const c of a.get_children()) { const r = tbFind(c, f); if (r) return r; } return null; };
const tbButton = label => { const b = tbBanner(); return b && tbFind(b, a => a instanceof St.Button && a.mapped && (a.label === label || a.get_accessible_name?.() === label)); };
`

// js returns the snippet body prefixed with the helpers, as one expression's value.
func js(body string) string { return jsPrelude + "(() => {" + body + "})()" }

// Notifications lists the notifications in the message tray, source by source.
func (s *Session) Notifications(ctx context.Context) ([]Notification, error) {
	var ns []Notification
	err := s.evalJSON(ctx, js(`
		const out = [];
		for (const src of Main.messageTray.getSources())
			for (const n of src.notifications)
				out.push({source: src.title ?? '', title: n.title ?? '', body: n.bannerBodyText ?? n.body ?? '',
					actions: (n.actions ?? []).map(a => a.label)});
		return out;`), &ns)
	if err != nil {
		return nil, fmt.Errorf("list notifications: %w", err)
	}
	return ns, nil
}

// Banner is the notification shown as a banner, if any (not while it slides in or out).
func (s *Session) Banner(ctx context.Context) (Notification, bool, error) {
	var n *Notification
	err := s.evalJSON(ctx, js(`
		// Shown: the tray's state SHOWN (2 in 43 and 48) and the banner in place. A banner
		// still sliding in has no position yet.
		const n = Main.messageTray._notification, b = tbBanner();
		if (!b || !n || Main.messageTray._notificationState !== 2 || b.get_transformed_position()[0] === null) return null;
		return {source: n.source?.title ?? '', title: n.title ?? '', body: n.bannerBodyText ?? n.body ?? '',
			actions: (n.actions ?? []).map(a => a.label)};`), &n)
	if err != nil {
		return Notification{}, false, fmt.Errorf("read the banner: %w", err)
	}
	if n == nil {
		return Notification{}, false, nil
	}
	return *n, true, nil
}

// WaitBanner waits until the banner shows a notification whose title is title, and returns it.
func (s *Session) WaitBanner(ctx context.Context, title string) (Notification, error) {
	var last Notification
	err := poll(ctx, func() (bool, error) {
		n, ok, err := s.Banner(ctx)
		last = n
		return ok && n.Title == title, err
	})
	if err != nil {
		return last, fmt.Errorf("wait for the banner %q (last shown: %q): %w", title, last.Title, err)
	}
	return last, nil
}

// ExpandBanner moves the pointer over the banner, as a person does, and waits until it is
// expanded and its buttons (shown only then) are in place.
func (s *Session) ExpandBanner(ctx context.Context) error {
	// The pointer comes from elsewhere: left where the banner now is, it would not enter it,
	// and the shell, seeing activity with the pointer outside, would hide the banner.
	if err := s.pointerAway(ctx); err != nil {
		return fmt.Errorf("expand the banner: %w", err)
	}
	var box struct{ X, Y, W, H float64 }
	if err := s.evalJSON(ctx, js(`
		const b = tbBanner();
		if (!b) throw new Error('no banner is shown');
		const r = tbBox(b);
		tbPointer().notify_absolute_motion(tbNow(), r.x + r.w / 2, r.y + Math.min(20, r.h / 2));
		return r;`), &box); err != nil {
		return fmt.Errorf("expand the banner: %w", err)
	}
	// Expanded once its size stays the same for two looks in a row (the animation ended).
	var prev string
	err := poll(ctx, func() (bool, error) {
		res, err := s.Eval(ctx, js(`const b = tbBanner(); if (!b) throw new Error('the banner went away'); return [b.expanded ?? true, tbBox(b)];`))
		if err != nil {
			return false, err
		}
		var v []json.RawMessage
		if err := json.Unmarshal([]byte(res), &v); err != nil || len(v) != 2 {
			return false, fmt.Errorf("decode %q: %v", res, err)
		}
		done := string(v[0]) == "true" && res == prev
		prev = res
		return done, nil
	})
	if err != nil {
		return fmt.Errorf("expand the banner: %w", err)
	}
	return nil
}

// Buttons are the labels of the buttons the banner shows now (its close button has none).
func (s *Session) Buttons(ctx context.Context) ([]string, error) {
	labels := []string{}
	err := s.evalJSON(ctx, js(`
		const b = tbBanner(), out = [];
		if (!b) throw new Error('no banner is shown');
		const walk = a => { if (a instanceof St.Button && a.mapped && a.label) out.push(a.label); a.get_children().forEach(walk); };
		walk(b);
		return out;`), &labels)
	if err != nil {
		return nil, fmt.Errorf("read the banner's buttons: %w", err)
	}
	return labels, nil
}

// ClickButton expands the banner and clicks its button label with the virtual pointer: moved
// onto the button, button 1 pressed and released there. The action's callback is never called
// directly: the shell's own event handling does what a person's click does.
func (s *Session) ClickButton(ctx context.Context, label string) error {
	if err := s.ExpandBanner(ctx); err != nil {
		return fmt.Errorf("click %q: %w", label, err)
	}
	if err := s.clickAt(ctx, fmt.Sprintf(`
		const a = tbButton(%q);
		if (!a) throw new Error('the banner has no button ' + %[1]q);
		const r = tbBox(a); return [r.x + r.w / 2, r.y + r.h / 2];`, label)); err != nil {
		return fmt.Errorf("click %q: %w", label, err)
	}
	return nil
}

// ClickBody clicks the banner's text (its default action), with the virtual pointer: moved
// over the banner first, as a hand does, so that the click does not land while the banner
// grows under the pointer (GNOME Shell 48 expands it on hover).
func (s *Session) ClickBody(ctx context.Context) error {
	if err := s.ExpandBanner(ctx); err != nil {
		return fmt.Errorf("click the banner: %w", err)
	}
	if err := s.clickAt(ctx, `
		const b = tbBanner();
		if (!b) throw new Error('no banner is shown');
		const r = tbBox(b); return [r.x + r.w / 3, r.y + 16];`); err != nil {
		return fmt.Errorf("click the banner: %w", err)
	}
	return nil
}

// clickAt moves the pointer to the point the snippet where returns, presses and releases
// button 1 there, then moves the pointer away so that it expands nothing else.
func (s *Session) clickAt(ctx context.Context, where string) error {
	var at []float64
	if err := s.evalJSON(ctx, js(where), &at); err != nil {
		return err
	}
	if len(at) != 2 {
		return fmt.Errorf("no point to click: %v", at)
	}
	// The pointer over a banner expands it, and the banner then moves and grows for a while
	// (an animation, slower on a loaded machine): wait until the point stops moving, as a hand
	// does before it clicks.
	move := func(at []float64) error {
		_, err := s.Eval(ctx, js(fmt.Sprintf(`tbPointer().notify_absolute_motion(tbNow(), %g, %g); return 0;`, at[0], at[1])))
		return err
	}
	if err := move(at); err != nil {
		return err
	}
	for range 20 {
		if err := sleep(ctx, 150*time.Millisecond); err != nil {
			return err
		}
		var now []float64
		if err := s.evalJSON(ctx, js(where), &now); err != nil {
			return err
		}
		if len(now) != 2 {
			return fmt.Errorf("no point to click: %v", now)
		}
		if slices.Equal(now, at) {
			break
		}
		at = now
		if err := move(at); err != nil {
			return err
		}
	}
	steps := []string{
		`tbPointer().notify_button(tbNow(), 1, Clutter.ButtonState.PRESSED); return 0;`,
		`tbPointer().notify_button(tbNow(), 1, Clutter.ButtonState.RELEASED); return 0;`,
	}
	// Separate events, a little apart, as a hand makes them.
	for _, step := range steps {
		if _, err := s.Eval(ctx, js(step)); err != nil {
			return err
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return s.pointerAway(ctx)
}

// TouchElsewhere moves the pointer where no banner is, as a person who goes back to work: the
// shell counts it as activity and hides a banner shown while nobody touched the machine about
// 2 s later (unless the pointer is over it).
func (s *Session) TouchElsewhere(ctx context.Context) error {
	if _, err := s.Eval(ctx, js(`tbPointer().notify_absolute_motion(tbNow(), 1100, 700); return 0;`)); err != nil {
		return fmt.Errorf("move the pointer: %w", err)
	}
	return s.pointerAway(ctx)
}

// pointerAway moves the pointer to the bottom of the screen, where no banner is.
func (s *Session) pointerAway(ctx context.Context) error {
	if _, err := s.Eval(ctx, js(`tbPointer().notify_absolute_motion(tbNow(), 1200, 780); return 0;`)); err != nil {
		return err
	}
	return sleep(ctx, 50*time.Millisecond)
}

// ClickPasswordEntry clicks into the passphrase field of the dialog shown (pinentry-gnome3's
// prompt), as a person does when the field has no cursor: GNOME Shell 48, headless, opens the
// dialog without giving the field the keyboard.
func (s *Session) ClickPasswordEntry(ctx context.Context) error {
	if err := s.clickAt(ctx, `
		const e = tbFind(global.stage, a => a instanceof St.PasswordEntry && a.mapped);
		if (!e) throw new Error('no passphrase field is shown');
		const r = tbBox(e); return [r.x + r.w / 2, r.y + r.h / 2];`); err != nil {
		return fmt.Errorf("click the passphrase field: %w", err)
	}
	return nil
}

// TypeText types text with the virtual keyboard, one key per character, then Return.
func (s *Session) TypeText(ctx context.Context, text string) error {
	for _, r := range text {
		if _, err := s.Eval(ctx, js(fmt.Sprintf(`
			const k = Clutter.unicode_to_keysym(%d), kb = tbKeyboard();
			kb.notify_keyval(tbNow(), k, Clutter.KeyState.PRESSED);
			kb.notify_keyval(tbNow(), k, Clutter.KeyState.RELEASED); return 0;`, r))); err != nil {
			return fmt.Errorf("type text: %w", err)
		}
	}
	if _, err := s.Eval(ctx, js(`
		const kb = tbKeyboard();
		kb.notify_keyval(tbNow(), Clutter.KEY_Return, Clutter.KeyState.PRESSED);
		kb.notify_keyval(tbNow(), Clutter.KEY_Return, Clutter.KeyState.RELEASED); return 0;`)); err != nil {
		return fmt.Errorf("type text: Return: %w", err)
	}
	return nil
}

// PromptText is the text of the visible labels of the passphrase prompt shown
// (pinentry-gnome3's), one per line, or "" when none is up.
func (s *Session) PromptText(ctx context.Context) (string, error) {
	var lines []string
	if err := s.evalJSON(ctx, js(`
		let d = tbFind(global.stage, a => a instanceof St.PasswordEntry && a.mapped);
		const out = [];
		if (!d) return out;
		while (d.get_parent() && d.get_parent() !== Main.layoutManager.modalDialogGroup) d = d.get_parent();
		const walk = a => { if (a.opacity === 0) return; if (a instanceof St.Label && a.mapped && a.text) out.push(a.text); a.get_children().forEach(walk); };
		walk(d);
		return out;`), &lines); err != nil {
		return "", fmt.Errorf("read the passphrase prompt: %w", err)
	}
	return strings.Join(lines, "\n"), nil
}

// ModalShown tells whether a modal dialog (the system prompt of pinentry-gnome3) is up.
func (s *Session) ModalShown(ctx context.Context) (bool, error) {
	var n int
	if err := s.evalJSON(ctx, `Main.modalCount`, &n); err != nil {
		return false, fmt.Errorf("look for a modal dialog: %w", err)
	}
	return n > 0, nil
}

// Clear removes every notification from the message tray (the shell's own and the tests'), so
// that the next one shows as a banner at once: banners wait in a queue behind the one shown,
// which does not time out while nobody touches the machine.
func (s *Session) Clear(ctx context.Context) error {
	if err := s.dismissAll(ctx); err != nil {
		return err
	}
	return s.pointerAway(ctx)
}

// addInputDevices plugs in the virtual pointer and keyboard once, at start, before any banner
// or dialog opens.
func (s *Session) addInputDevices(ctx context.Context) error {
	if _, err := s.Eval(ctx, js(`tbPointer(); tbKeyboard(); return 0;`)); err != nil {
		return fmt.Errorf("add the virtual pointer and keyboard: %w", err)
	}
	return nil
}

func (s *Session) dismissAll(ctx context.Context) error {
	if _, err := s.Eval(ctx, js(`
		const tray = Main.messageTray;
		for (const src of tray.getSources())
			for (const n of [...src.notifications]) n.destroy();
		tray._updateState();
		return 0;`)); err != nil {
		return fmt.Errorf("dismiss the notifications: %w", err)
	}
	return nil
}

// poll calls check every 100 ms until it is done, fails or ctx ends.
func poll(ctx context.Context, check func() (bool, error)) error {
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ScreenshotBanner saves a PNG of the banner shown, with a margin around it, to file.
func (s *Session) ScreenshotBanner(ctx context.Context, file string) error {
	return s.screenshotActor(ctx, file, `const b = tbBanner(); if (!b) throw new Error('no banner is shown'); return tbBox(b);`)
}

// ScreenshotPrompt saves a PNG of the passphrase prompt shown (pinentry-gnome3's dialog), with
// a margin around it, to file.
func (s *Session) ScreenshotPrompt(ctx context.Context, file string) error {
	// The dialog is the widest ancestor of the passphrase field that is not as wide as the
	// screen (the modal dialog's own actor covers the whole screen).
	return s.screenshotActor(ctx, file, `
		let a = tbFind(global.stage, x => x instanceof St.PasswordEntry && x.mapped);
		if (!a) throw new Error('no passphrase prompt is shown');
		while (a.get_parent() && tbBox(a.get_parent()).w < global.stage.width * 0.9) a = a.get_parent();
		return tbBox(a);`)
}

// screenshotActor saves the part of the screen around the box the snippet where returns.
func (s *Session) screenshotActor(ctx context.Context, file, where string) error {
	var box struct{ X, Y, W, H float64 }
	if err := s.evalJSON(ctx, js(where), &box); err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	const margin = 24 // the shadow, and a little of what is around
	x0, y0 := max(0, int(box.X)-margin), max(0, int(box.Y)-margin)
	x1, y1 := int(box.X+box.W)+margin, int(box.Y+box.H)+margin
	return s.screenshot(ctx, file, "ScreenshotArea", int32(x0), int32(y0), int32(x1-x0), int32(y1-y0), false)
}
