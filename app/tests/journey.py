#!/usr/bin/python3
"""The Backup app driven as a person would, through AT-SPI, in a running GNOME Shell session.

Run by app/journey_test.go with the app and the fake agent (fakebackupd, dbusapi/dbusapitest)
already started on the session bus:
  journey.py first-run SHOTS SUFFIX    first run → create → paired; update now, the open
                                       application's question, cancel; verify; restore's question
  journey.py pair SHOTS SUFFIX         first run → "Use a Tails stick I already have…" → paired
  journey.py page-verify SHOTS SUFFIX  after a second start with --page verify: the verify page
  journey.py verify-waiting SHOTS SUFFIX  the backup not plugged in (fakebackupd -plug-after): Check
                                       waits for it, saying to plug it in, then goes on by itself
  journey.py backup-settings SHOTS SUFFIX  the backup's page: updates without the passphrase
                                       turned on; "Forget this backup", its confirmation, forgotten
  journey.py promote SHOTS SUFFIX      a backup Tails: the promote page, promoted
  journey.py no-service SHOTS SUFFIX   the agent gone from the bus: the page that says so
Run by agent/realjourney_test.go against the real agent and the real root helper, the stick
named by $JOURNEY_STICK:
  journey.py real-create SHOTS SUFFIX         first run → create on the blank stick → ready
  journey.py real-update-cancel SHOTS SUFFIX  update now, its progress, Cancel → cancelled
  journey.py real-update SHOTS SUFFIX         the backup plugged in → its automatic update, updated
  journey.py real-verify SHOTS SUFFIX         check the backup, not plugged in → it waits;
                                              plugged in → identical and valid
  journey.py real-restore SHOTS SUFFIX        restore, not plugged in → it waits; plugged in →
                                              its question → restored
The real-update, real-verify and real-restore journeys print "journey: plug the stick in" when
the person would plug the stick in: the test then plugs it in.
SHOTS is the folder for the screenshots ("" for none), SUFFIX is added to their names ("-dark").
Every step waits for what the window must show, and fails with what it showed instead.
"""

import json
import os
import re
import struct
import sys
import time

import pyatspi
from gi.repository import Gio, GLib

APP = "tails-backup-app"
TIMEOUT = 30
# The sticks of fakebackupd's first-run scenario (dbusapi/dbusapitest): the blank one a backup is
# created on, and a Tails stick to pair.
STICK = "SanDisk Cruzer Blade, 16.0 GB"
TAILS_STICK = "Samsung Flash Drive, 32.0 GB"
# Their names as patterns (see named), for any language: another writes the size its way
# ("16٫0 غ.ب").
STICK_NAME = "SanDisk Cruzer Blade*"
TAILS_STICK_NAME = "Samsung Flash Drive*"


class JourneyError(Exception):
    pass


# In another language (LANGUAGE, with the catalogs of TEXTDOMAINDIR), the window shows the
# translations of the English texts this journey looks for: the app's own and those of the agent
# (the fake words them through the same catalog). A name is then matched against the
# translations of the catalog's texts that it can be the English of (see Translator.patterns).

# The bidirectional controls that l10n puts around values and before right-to-left sentences
# (RLM, LRM, ALM, the isolates): invisible, left out before comparing.
_BIDI = dict.fromkeys(map(ord, "\u200e\u200f\u061c\u2066\u2067\u2068\u2069"), None)


def plain(text):
    return (text or "").translate(_BIDI)


# A format's verb: Go's (%s, %[1]s, %.1f, %d), Python's brace fields ({name}); "%%" is a sign.
_VERB = re.compile(r"%%|%(?:\[\d+\])?[-+# 0]*\d*(?:\.\d+)?(?:\[\d+\])?[a-zA-Z]|\{[a-z_]*\}")


def _format_regex(fmt, values=None):
    """The regular expression of the texts a format gives: each verb any text, or the value
    given for it (values: the n-th verb's, a regular expression)."""
    out, n, i = [], 0, 0
    for m in _VERB.finditer(fmt):
        out.append(re.escape(fmt[i:m.start()]))
        if m.group() == "%%":
            out.append("%")
        else:
            idx = re.match(r"%\[(\d+)\]", m.group())
            k = int(idx.group(1)) - 1 if idx else n
            out.append(values[k] if values and k < len(values) else "(.*?)")
            n = k + 1
        i = m.end()
    out.append(re.escape(fmt[i:]))
    return "".join(out)


def _read_mo(path):
    """The entries of a compiled catalog: ([msgid, msgid_plural...], [msgstr forms...])."""
    with open(path, "rb") as f:
        data = f.read()
    order = "<" if struct.unpack("<I", data[:4])[0] == 0x950412de else ">"
    _, count, ids, strs = struct.unpack(order + "4I", data[4:20])
    entries = []
    for k in range(count):
        ilen, ioff = struct.unpack(order + "2I", data[ids + 8 * k:ids + 8 * k + 8])
        slen, soff = struct.unpack(order + "2I", data[strs + 8 * k:strs + 8 * k + 8])
        msgids = data[ioff:ioff + ilen].decode().split("\0")
        if msgids[0]:
            entries.append((msgids, data[soff:soff + slen].decode().split("\0")))
    return entries


class Translator:
    def __init__(self):
        self.entries = []
        langs = [l for l in os.environ.get("LANGUAGE", "").split(":") if l]
        base = os.environ.get("TEXTDOMAINDIR", "/usr/share/locale")
        for lang in langs + [l.split("_")[0] for l in langs]:
            path = os.path.join(base, lang, "LC_MESSAGES", "tails-backup.mo")
            if os.path.exists(path):
                self.entries = _read_mo(path)
                break
        self.cache = {}

    def patterns(self, name):
        """The regular expressions a shown name (bidi controls left out) matches when it is
        what the English name shows: name is a text, or a pattern with "*" for any text. Each
        catalog text (with a letter outside its verbs) that name can be the English of (name's
        pattern matches the text, or the text's format gives name) gives its translations,
        with the values name gives it where they are plain words and numbers (Thunderbird, 12),
        any text for the others (a size, a stick's name, which the language writes its way).
        Without a catalog, or when no text fits (a stick's name), name's own pattern."""
        if name in self.cache:
            return self.cache[name]
        glob = "".join(".*" if c == "*" else re.escape(c) for c in name)
        found = []
        for msgids, msgstrs in self.entries:
            fits = None
            for msgid in msgids:
                if not re.search(r"[A-Za-z]", _VERB.sub("", msgid)):
                    continue
                if "*" in name and re.fullmatch(glob, msgid, re.S):
                    fits = []
                    break
                m = re.fullmatch(_format_regex(msgid), name, re.S)
                if m:
                    fits = [re.escape(v) if re.fullmatch(r"[A-Za-z0-9 ]+", v) else ".*?" for v in m.groups()]
                    break
            if fits is not None:
                exact = name in msgids
                lead, trail = (".*" if name.startswith("*") else ""), (".*" if name.endswith("*") else "")
                pats = [lead + _format_regex(plain(s), fits) + trail for s in msgstrs]
                found.append((exact, pats))
        if any(e for e, _ in found):
            found = [f for f in found if f[0]]
        pats = [p for _, ps in found for p in ps] or [glob]
        self.cache[name] = [re.compile(p, re.S) for p in pats]
        return self.cache[name]

    def matches(self, shown, name):
        return any(p.fullmatch(plain(shown)) for p in self.patterns(name))

    def text(self, msgid):
        """The translation of msgid, or msgid."""
        for msgids, msgstrs in self.entries:
            if msgids[0] == msgid:
                return plain(msgstrs[0])
        return msgid


TR = Translator()


def shell_call(method, signature, args, reply, iface="org.gnome.Shell", path="/org/gnome/Shell"):
    bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
    return bus.call_sync(iface if iface != "org.gnome.Shell.Screenshot" else iface, path,
                         iface, method, GLib.Variant(signature, args), GLib.VariantType(reply),
                         Gio.DBusCallFlags.NONE, 10_000, None).unpack()


def shell_eval(js):
    ok, out = shell_call("Eval", "(s)", (js,), "(bs)")
    if not ok:
        raise JourneyError("Eval failed: " + out)
    return json.loads(out) if out else None


def app_root():
    for a in pyatspi.Registry.getDesktop(0):
        try:
            if a is not None and a.name == APP:
                return a
        except Exception:
            continue
    return None


def walk(acc):
    yield acc
    for i in range(acc.childCount):
        try:
            child = acc.getChildAtIndex(i)
        except Exception:
            continue
        if child is not None:
            yield from walk(child)


def showing(acc):
    """GTK 4.8 never sets SHOWING; the window keeps its hidden pages out of the tree, so a
    visible accessible in it is on the screen."""
    try:
        return acc.getState().contains(pyatspi.STATE_VISIBLE)
    except Exception:
        return False


def visible_texts():
    root = app_root()
    if root is None:
        return ["(the app is not on the accessibility bus)"]
    out = []
    for acc in walk(root):
        try:
            if acc.name and showing(acc):
                out.append("%s %r" % (acc.getRoleName(), acc.name))
        except Exception:
            continue
    return out


# The role names of GTK 4.8 (Debian 12, Tails 6) and those GTK 4.18 (Debian 13, Tails 7) gives
# the same widgets.
_ROLES = {
    "push button": ("push button", "button"),
    "dialog": ("dialog", "alert"),
    "switch": ("toggle button", "switch", "check box"),  # GTK 4.8 and 4.18 name a GtkSwitch "check box"
}


def is_role(acc, role):
    return acc.getRoleName() in _ROLES.get(role, (role,))


def named(acc, name):
    """Whether acc is called name (or starts with it, name ending in "*"; or contains it, name
    between two "*"), or is a button whose
    label says name: libadwaita 1.2 names a dialog's buttons twice ("Cancel Cancel"), and the
    switch of a row with the row's title twice (seen in GNOME 43: "Update without asking the
    passphrase Update without asking the passphrase")."""
    if TR.matches(acc.name, name):
        return True
    n = acc.name or ""
    half = len(n) // 2
    if len(n) % 2 == 1 and n[half] == " " and n[:half] == n[half + 1:] and TR.matches(n[:half], name):
        return True
    if is_role(acc, "push button"):
        for i in range(acc.childCount):
            child = acc.getChildAtIndex(i)
            if child is not None and child.getRoleName() == "label" and TR.matches(child.name, name):
                return True
    return False


def find(role, name, timeout=TIMEOUT, sensitive=False, dialog=False):
    """Waits for a showing accessible of role named name (see named), in a dialog of the window
    when dialog is true, and returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root = app_root()
        if root is not None and dialog:
            try:
                root = next((a for a in walk(root) if is_role(a, "dialog") and showing(a)), None)
            except Exception:
                # An accessible that went away, or an app too busy to answer in time (seen
                # while a dialog opened on a loaded machine): look again.
                root = None
        if root is not None:
            try:
                for acc in walk(root):
                    try:
                        if not is_role(acc, role) or not showing(acc):
                            continue
                        if named(acc, name):
                            if sensitive and not acc.getState().contains(pyatspi.STATE_SENSITIVE):
                                continue
                            return acc
                    except Exception:
                        continue
            except Exception:
                # The walk itself met an accessible that went away ("The application no longer
                # exists", seen in GNOME 43 as a dialog closed): look again.
                pass
        time.sleep(0.2)
    raise JourneyError("no %s %r in the window after %d s; it shows:\n  %s" % (
        role, name, timeout, "\n  ".join(visible_texts())))


def gone(role, name, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            find(role, name, timeout=0.1)
        except JourneyError:
            return
        time.sleep(0.2)
    raise JourneyError("%s %r still shows after %d s" % (role, name, timeout))


_WINDOW_RECT = (
    "(() => { const w = global.get_window_actors().map(a => a.meta_window)"
    ".find(w => w.get_title() === %s); if (!w) return null;"
    " const r = w.get_frame_rect(); return [r.x, r.y, r.width, r.height]; })()") % json.dumps(TR.text("Backup"))

_POINTER = (
    "const Clutter = imports.gi.Clutter, GLib = imports.gi.GLib;"
    "const seat = (Clutter.get_default_backend ? Clutter.get_default_backend()"
    " : global.stage.context.get_backend()).get_default_seat();"
    "globalThis._journeyPointer ??= seat.create_virtual_device(Clutter.InputDeviceType.POINTER_DEVICE);"
    "const p = globalThis._journeyPointer, now = () => GLib.get_monotonic_time();")


def pointer_click(acc):
    """Clicks the middle of acc with a virtual pointer, as a hand does: GTK 4.8 gives check
    buttons and switches no AT-SPI action."""
    rect = shell_eval(_WINDOW_RECT)
    if rect is None:
        raise JourneyError("no window titled Backup to click in")
    # A page slides in (a stack transition, slower on a loaded machine): wait until the widget
    # stops moving, as a hand does before it clicks (seen: a click on a stick's check box that
    # landed beside it while the restore page was still sliding in).
    ext = acc.queryComponent().getExtents(pyatspi.WINDOW_COORDS)
    for _ in range(20):
        time.sleep(0.15)
        now = acc.queryComponent().getExtents(pyatspi.WINDOW_COORDS)
        if (now.x, now.y, now.width, now.height) == (ext.x, ext.y, ext.width, ext.height):
            break
        ext = now
    x, y = rect[0] + ext.x + ext.width / 2, rect[1] + ext.y + ext.height / 2
    for event in ("p.notify_absolute_motion(now(), %g, %g);" % (x, y),
                  "p.notify_button(now(), 1, Clutter.ButtonState.PRESSED);",
                  "p.notify_button(now(), 1, Clutter.ButtonState.RELEASED);"):
        shell_eval(_POINTER + event + "true")
        time.sleep(0.05)


def click(role, name, timeout=TIMEOUT, dialog=False):
    """Clicks a button through its AT-SPI action, or with the pointer when it has none."""
    acc = find(role, name, timeout, sensitive=True, dialog=dialog)
    try:
        action = acc.queryAction()
        n = action.nActions
    except NotImplementedError:
        n = 0
    for i in range(n):
        if action.getName(i) in ("click", "activate", "press", "toggle"):
            action.doAction(i)
            return acc
    pointer_click(acc)
    return acc


def progress_at_least(value, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bar = find("progress bar", "Progress", timeout)
        if bar.queryValue().currentValue >= value:
            return
        time.sleep(0.2)
    raise JourneyError("the progress bar did not reach %.2f" % value)


class Shots:
    def __init__(self, folder, suffix):
        self.folder, self.suffix = folder, suffix

    def take(self, name):
        if not self.folder:
            return
        time.sleep(0.6)  # transitions and the progress bar's animation
        # The area of the app's main window (its dialogs are drawn over it), frame included.
        rect = shell_eval(_WINDOW_RECT)
        if rect is None:
            raise JourneyError("no window titled Backup to take a screenshot of")
        path = os.path.join(self.folder, name + self.suffix + ".png")
        tmp = os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/tmp"), "journey-shot.png")
        ok, used = shell_call("ScreenshotArea", "(iiiibs)", (rect[0], rect[1], rect[2], rect[3], False, tmp),
                              "(bs)", iface="org.gnome.Shell.Screenshot", path="/org/gnome/Shell/Screenshot")
        if not ok:
            raise JourneyError("the shell did not take the screenshot " + name)
        with open(used, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        os.remove(used)
        print("screenshot", path, flush=True)


def step(text):
    print("journey:", text, flush=True)


def first_run(shots):
    step("first run")
    find("push button", "Use a Tails stick I already have…")
    click_to = find("push button", "Create a backup Tails…")
    shots.take("first-run")
    click_to.queryAction().doAction(0)

    step("create: choose a stick")
    find("label", "Choose a USB stick for your backup Tails")
    find("label", "This stick is too small*")  # the unusable stick says why
    click("check box", STICK_NAME)
    find("push button", "Next", sensitive=True)
    shots.take("create-choose")
    click("push button", "Next")

    step("create: confirm")
    find("label", "Everything on %s will be erased" % STICK)
    find("label", "The Tails 6.10 on it")
    erase = find("push button", "Erase and Create the Backup")
    if erase.getState().contains(pyatspi.STATE_SENSITIVE):
        raise JourneyError("the erase button works before the confirmation is checked")
    click("check box", "I understand that everything on this stick will be erased")
    find("push button", "Erase and Create the Backup", sensitive=True)
    shots.take("create-confirm")
    click("push button", "Erase and Create the Backup")

    step("create: progress")
    find("label", "Creating your backup Tails")
    find("label", "Everything on %s is being erased." % STICK)  # the job's message
    progress_at_least(0.25)
    find("label", "Copying: *")
    shots.take("create-progress")

    step("create: paired")
    find("label", "Your backup Tails is ready", timeout=60)
    find("label", "Your backup Tails is ready: it is updated each time you plug it in.")
    shots.take("paired")
    click("push button", "Done")

    step("overview: update now, the open application's question, then cancel")
    find("label", "Your backup Tails is plugged in.")
    find("label", "Plugged in")
    shots.take("overview")
    click("push button", "Update now")
    find("label", "Close Thunderbird?", dialog=True)
    find("push button", "Skip its data", dialog=True)
    shots.take("update-question")
    click("push button", "Close Thunderbird", dialog=True)
    gone("dialog", "Close Thunderbird?")
    find("label", "Updating your backup Tails")
    progress_at_least(0.25)
    find("label", "Copying: *")
    shots.take("update-progress")
    click("push button", "Cancel")
    find("push button", "Update now", sensitive=True)
    gone("progress bar", "Progress")
    # How the update ended, in a toast that goes by itself.
    find("label", "Cancelled. Nothing was lost*")
    gone("label", "Cancelled. Nothing was lost*", timeout=20)

    step("verify")
    click("push button", "Check a backup")
    find("label", "Choose the backup to check")
    click("check box", STICK_NAME)
    click("push button", "Check")
    find("label", "Your backup Tails is not up to date", timeout=60)
    find("label", "Persistent/notes.txt")
    find("label", "Persistent/photos/new.jpg")
    find("label", "Boot loader")
    shots.take("verify-result")
    click("push button", "Done")

    step("restore: its question")
    click("push button", "Restore from a backup")
    click("check box", STICK_NAME)
    click("push button", "Restore")
    find("label", "Replace your Persistent Storage?", dialog=True)
    find("push button", "Restore and delete 12 files", dialog=True)
    shots.take("restore-confirm")
    click("push button", "Cancel", dialog=True)
    gone("dialog", "Replace your Persistent Storage?")
    find("label", "Cancelled", timeout=60)
    find("label", "Cancelled. Nothing was changed.")
    click("push button", "Done")
    find("push button", "Update now", sensitive=True)


def pair(shots):
    step("pair: a Tails stick I already have")
    click("push button", "Use a Tails stick I already have…")
    find("label", "Choose your Tails stick")
    find("label", "This stick has no Tails on it*")  # the blank sticks say why not
    click("check box", TAILS_STICK_NAME)
    find("push button", "Pair", sensitive=True)
    shots.take("pair-choose")
    click("push button", "Pair")
    find("label", "Your backup Tails is paired", timeout=60)
    find("label", "The stick is now your backup Tails. Update it now, or plug it in later.")
    shots.take("pair-done")
    click("push button", "Done")
    find("label", "Your backup Tails is plugged in.")
    find("label", TAILS_STICK_NAME)
    find("push button", "Update now", sensitive=True)


def page_verify(shots):
    step("a second start with --page verify: the window shows the verify page")
    find("label", "Choose the backup to check")
    find("check box", TAILS_STICK_NAME)


def verify_waiting(shots):
    step("verify with the backup not plugged in: the job waits for it")
    find("label", "Not plugged in")
    click("push button", "Check a backup")
    find("label", "Choose the backup to check")
    find("label", "Your backup Tails is not plugged in. Press Check, then plug it in*")
    click("push button", "Check")
    find("label", "Plug in your backup Tails")
    find("label", "Plug in your backup Tails: the comparison starts as soon as it is plugged in.")
    find("push button", "Cancel", sensitive=True)
    shots.take("verify-waiting")
    step("verify: the fake plugs the backup in, the check goes on by itself")
    find("label", "Checking your backup Tails", timeout=60)
    find("label", "Your backup Tails is not up to date", timeout=60)
    click("push button", "Done")
    find("push button", "Update now", sensitive=True)


def switched_on(acc):
    """Whether a switch is on: GTK says it as checked (or pressed, for a toggle button's role)."""
    states = acc.getState()
    return states.contains(pyatspi.STATE_CHECKED) or states.contains(pyatspi.STATE_PRESSED)


def backup_settings(shots):
    step("the backup's own page")
    find("label", "Your backup Tails is plugged in.")
    # The row's button, named by the row's title: the stick's name.
    click("push button", STICK_NAME)
    find("label", "Update without asking the passphrase")
    find("label", "Each update asks the backup's passphrase*")
    find("label", "Forget this backup")
    switch = find("switch", "Update without asking the passphrase")
    if switched_on(switch):
        raise JourneyError("the switch is on for a backup updated with its passphrase")
    shots.take("backup")

    step("updates without the passphrase: on")
    click("switch", "Update without asking the passphrase")
    find("label", "Updates without the passphrase are on", timeout=60)
    find("label", "Updates will not ask for the passphrase*")
    shots.take("passphrase-free-on")
    click("push button", "Done")
    find("label", "*Updated without asking the passphrase*")

    step("forget: the confirmation says what goes and what stays")
    click("push button", STICK_NAME)
    find("label", "A key kept in this Tails' Persistent Storage opens this backup*")
    if not switched_on(find("switch", "Update without asking the passphrase")):
        raise JourneyError("the switch is off for a backup updated without its passphrase")
    click("push button", "Forget…")
    find("label", "Forget this backup?", dialog=True)
    find("label", "*What the backup holds stays on it.", dialog=True)
    find("push button", "Cancel", dialog=True)
    shots.take("forget-confirm")
    click("push button", "Forget", dialog=True)
    gone("dialog", "Forget this backup?")
    find("label", "Your backup Tails is forgotten", timeout=60)
    find("label", "*is forgotten: it is no longer updated*")
    shots.take("forgotten")
    click("push button", "Done")
    # No backup any more: the first run.
    find("push button", "Create a backup Tails…")


def promote(shots):
    step("promote")
    find("push button", "Make This the Main Tails")
    shots.take("promote")
    click("push button", "Make This the Main Tails")
    find("label", "This Tails is now the main one", timeout=60)
    click("push button", "Done")
    # No backup Tails any more, and no backup of its own yet: the first run.
    find("push button", "Create a backup Tails…")


def no_service(shots):
    step("the agent goes away")
    find("label", "The backup service is not running")


def real_stick():
    return os.environ["JOURNEY_STICK"]


def progress_above(value, timeout=TIMEOUT):
    """Waits until the progress bar shows more than value, and returns what it shows."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        bar = find("progress bar", "Progress", timeout)
        v = bar.queryValue().currentValue
        if v > value:
            return v
        time.sleep(0.1)
    raise JourneyError("the progress bar did not go above %.2f; the window shows:\n  %s" % (
        value, "\n  ".join(visible_texts())))


def real_create(shots):
    stick = real_stick()
    step("first run: the empty state")
    find("push button", "Use a Tails stick I already have…")
    click("push button", "Create a backup Tails…")

    step("create: choose the blank stick")
    find("label", "Choose a USB stick for your backup Tails")
    click("check box", stick)
    click("push button", "Next")

    step("create: what is erased, the confirmation")
    find("label", "Everything on %s will be erased" % stick)
    find("label", "Partition 1: *")  # what the blank stick holds, as udisks2 describes it
    erase = find("push button", "Erase and Create the Backup")
    if erase.getState().contains(pyatspi.STATE_SENSITIVE):
        raise JourneyError("the erase button works before the confirmation is checked")
    click("check box", "I understand that everything on this stick will be erased")
    shots.take("real-create-confirm")
    click("push button", "Erase and Create the Backup")

    # The eight steps take seconds between two ext4 images: the window shows the job's page
    # and its progress bar, then the end.
    step("create: progress")
    find("label", "Creating your backup Tails")
    find("progress bar", "Progress")

    step("create: ready")
    find("label", "Your backup Tails is ready", timeout=180)
    shots.take("real-create-ready")
    click("push button", "Done")
    find("label", "*is plugged in.*")
    find("push button", "Update now", sensitive=True)


def real_update_cancel(shots):
    step("update now: progress, then Cancel")
    click("push button", "Update now")
    find("label", "Updating your backup Tails")
    v = progress_above(0, timeout=120)
    print("journey: the progress bar shows %.3f; Cancel" % v, flush=True)
    shots.take("real-update-progress")
    click("push button", "Cancel")
    find("label", "Backup update cancelled*")
    gone("progress bar", "Progress")
    # The agent ejected the stick: the overview asks to plug it in again.
    find("push button", "Plug in your backup Tails")
    find("label", "*marked incomplete*")


def plug_in():
    """Asks agent/realjourney_test.go to plug the stick in, as the person would now: the test
    waits for this very line."""
    print("journey: plug the stick in", flush=True)


def real_update(shots):
    step("the backup is unplugged: the overview asks for it")
    find("push button", "Plug in your backup Tails")
    find("label", "The update starts by itself when you plug in your backup Tails.")
    plug_in()
    step("plugged in: the automatic update, its progress on the overview")
    v = progress_above(0, timeout=120)
    print("journey: the progress bar shows %.3f" % v, flush=True)
    shots.take("real-update-progress")
    # How it ended, in a toast; the agent ejected the stick again.
    find("label", "Backup updated*", timeout=180)
    gone("progress bar", "Progress")
    find("push button", "Plug in your backup Tails")
    gone("label", "*marked incomplete*")


def real_verify(shots):
    step("verify: the backup is not plugged in")
    click("push button", "Check a backup")
    find("label", "Choose the backup to check")
    find("label", "Your backup Tails is not plugged in. Press Check, then plug it in*")
    click("push button", "Check")
    find("label", "Plug in your backup Tails")
    find("label", "Plug in your backup Tails: the comparison starts as soon as it is plugged in.")
    find("push button", "Cancel", sensitive=True)
    plug_in()
    step("verify: plugged in, the check goes on by itself")
    find("label", "Your backup Tails was checked", timeout=180)
    find("label", "The backup is identical and valid (metadata compared).")
    shots.take("real-verify-result")
    click("push button", "Done")


def real_restore(shots):
    step("restore: the backup is not plugged in")
    click("push button", "Restore from a backup")
    find("label", "Choose the backup to restore from")
    find("label", "No backup Tails is plugged in. Press Restore, then plug in your backup Tails*")
    click("push button", "Restore")
    find("label", "Plug in your backup Tails")
    find("label", "Plug in your backup Tails: the restore starts as soon as it is plugged in.*")
    plug_in()
    step("restore: plugged in, its question says what is deleted and replaced")
    title = "Restore your Persistent Storage from this backup?"
    find("label", title, dialog=True, timeout=120)
    find("label", "*was last updated completely on*", dialog=True)
    find("label", "*files in your Persistent Storage that are not on the backup will be deleted, "
         "and files that differ will be replaced by the backup's version.*", dialog=True)
    find("push button", "Cancel", dialog=True)
    shots.take("real-restore-confirm")
    click("push button", "Restore", dialog=True)
    gone("dialog", title)
    step("restore: done")
    find("label", "Your Persistent Storage is restored", timeout=180)
    done = find("label", "Your Persistent Storage is restored: *")
    # What the window says, for the test to compare with the helper's report.
    print("journey: result %s" % done.name, flush=True)
    shots.take("real-restore-done")
    click("push button", "Done")


JOURNEYS = {"first-run": first_run, "pair": pair, "page-verify": page_verify, "verify-waiting": verify_waiting,
            "backup-settings": backup_settings, "promote": promote,
            "no-service": no_service, "real-create": real_create, "real-update-cancel": real_update_cancel,
            "real-update": real_update, "real-verify": real_verify, "real-restore": real_restore}


def hide_overview():
    """GNOME Shell 48 opens the Activities overview once its start-up animation ends, seconds
    after it answers on the bus: wait for the start-up to end, then for the overview to be
    gone, so that the pointer clicks the window and not the overview over it."""
    deadline = time.monotonic() + TIMEOUT
    calm = 0
    while time.monotonic() < deadline:
        busy = shell_eval("Main.layoutManager._startingUp || Main.overview.visible"
                          " || Main.overview.animationInProgress")
        if busy:
            calm = 0
            shell_eval("if (!Main.layoutManager._startingUp) Main.overview.hide(); true")
        else:
            calm += 1
            if calm >= 3:
                return
        time.sleep(0.3)
    raise JourneyError("the Activities overview is still open after %d s" % TIMEOUT)


def main():
    journey, folder, suffix = sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else ""
    shots = Shots(folder, suffix)
    hide_overview()
    try:
        JOURNEYS[journey](shots)
    except JourneyError as err:
        print("journey failed:", err, file=sys.stderr, flush=True)
        return 1
    step("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
