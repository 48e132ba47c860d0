#!/usr/bin/python3
"""A fake agent for the app's AT-SPI journey: serves org.boum.tails.Backup1 (docs/dbus-api.md) on
the session bus with made-up sticks and jobs whose progress runs by itself.

SCENARIO=first-run (no backup yet), paired (one, not plugged), plugged, or backup (this Tails is a
backup Tails). FAKE_STEP is the progress of each 0.3 s tick. The Go fake of the agent's D-Bus API
(dbusapi/dbusapitest, being written) is to replace it once it exists.
"""
import os
import time

from gi.repository import Gio, GLib

XML = """<node><interface name="org.boum.tails.Backup1">
<method name="GetStatus"><arg direction="out" type="a{sv}"/></method>
<method name="ListSticks"><arg direction="in" type="s"/><arg direction="out" type="aa{sv}"/></method>
<method name="UpdateNow"><arg direction="in" type="s"/><arg direction="out" type="s"/></method>
<method name="Create"><arg direction="in" type="s"/><arg direction="in" type="s"/><arg direction="out" type="s"/></method>
<method name="Pair"><arg direction="in" type="s"/><arg direction="out" type="s"/></method>
<method name="Restore"><arg direction="in" type="s"/><arg direction="out" type="s"/></method>
<method name="Verify"><arg direction="in" type="s"/><arg direction="out" type="s"/></method>
<method name="Promote"><arg direction="out" type="s"/></method>
<method name="Cancel"><arg direction="in" type="s"/></method>
<method name="Answer"><arg direction="in" type="s"/><arg direction="in" type="s"/><arg direction="in" type="s"/></method>
<method name="SetReminders"><arg direction="in" type="b"/><arg direction="in" type="u"/></method>
<method name="Snooze"/>
<signal name="StateChanged"/>
<signal name="Progress"><arg type="s"/><arg type="a{sv}"/></signal>
<signal name="Message"><arg type="s"/><arg type="s"/><arg type="s"/></signal>
<signal name="Question"><arg type="s"/><arg type="s"/><arg type="a{sv}"/></signal>
<signal name="JobFinished"><arg type="s"/><arg type="s"/><arg type="s"/><arg type="a{sv}"/></signal>
</interface></node>"""

now = int(time.time())
scenario = os.environ.get("SCENARIO", "first-run")
STEP = float(os.environ.get("FAKE_STEP", "0.05"))
backups = []
if scenario != "first-run":
    backups.append(dict(uuid="u1", name="SanDisk Ultra (16 GB)", paired=now - 40 * 86400,
                        last_success=now - 3 * 86400, last_attempt=now - 3 * 86400, last_result="success",
                        last_message="Your backup Tails is up to date.", age_text="Updated 3 days ago",
                        plugged=scenario == "plugged", device="/dev/sdb" if scenario == "plugged" else ""))
reminders = [True, 7]
job = {}
conn = None
counter = [0]

def V(v):
    if isinstance(v, bool): return GLib.Variant("b", v)
    if isinstance(v, int): return GLib.Variant("x", v)
    if isinstance(v, float): return GLib.Variant("d", v)
    if isinstance(v, str): return GLib.Variant("s", v)
    if isinstance(v, dict): return GLib.Variant("a{sv}", {k: V(x) for k, x in v.items()})
    if isinstance(v, list) and v and isinstance(v[0], str): return GLib.Variant("as", v)
    if isinstance(v, list) and v and isinstance(v[0], dict): return GLib.Variant("aa{sv}", [{k: V(x) for k, x in d.items()} for d in v])
    if isinstance(v, list): return GLib.Variant("aa{sv}", [])
    raise TypeError(v)

def D(d): return {k: V(x) for k, x in d.items()}

def emit(name, sig, args):
    conn.emit_signal(None, "/org/boum/tails/Backup1", "org.boum.tails.Backup1", name, GLib.Variant(sig, args) if sig else None)

def status():
    return dict(is_backup=scenario == "backup", persistent_storage=True, backups=backups,
                reminders_enabled=reminders[0], reminder_period_days=reminders[1], snoozed_until=0,
                next_reminder=now + 4 * 86400,
                reminder_text="Next reminder in about 4 days, unless your backup is updated before.",
                paused=False, paused_text="", job=job)

def sticks(purpose):
    if purpose == "create":
        return [dict(device="/dev/sdb", name="SanDisk Ultra", size=16_000_000_000, size_text="16.0 GB", usable=True, reason="",
                     paired=False, backup_of_this=False, erase=["The Tails 6.10 on it", "2 partitions, 14.2 GB"], confirm="tok-sdb"),
                dict(device="/dev/sdc", name="Kingston DataTraveler", size=4_000_000_000, size_text="4.0 GB", usable=False,
                     reason="This stick is too small: a backup of this Tails needs at least 8.0 GB.", erase=[], confirm="")]
    return [dict(device="/dev/sdb", name="SanDisk Ultra (16 GB)", size=16_000_000_000, size_text="16.0 GB", usable=True,
                 paired=True, backup_of_this=True)]

def run_job(kind, finish, text_fmt, details=None, question=None):
    global job
    counter[0] += 1
    jid = "job%d" % counter[0]
    job = dict(id=jid, kind=kind, backup="u1", device="/dev/sdb", automatic=False)
    state = dict(f=0.0, cancelled=False, waiting=bool(question))
    def tick():
        global job
        if state["cancelled"]:
            job = {}
            emit("JobFinished", "(sssa{sv})", (jid, "cancelled", "The %s was cancelled; nothing was lost." % kind, {}))
            emit("StateChanged", "", None); return False
        if state["waiting"]:
            return True
        state["f"] = min(1.0, state["f"] + STEP)
        f = state["f"]
        emit("Progress", "(sa{sv})", (jid, D(dict(fraction=f, text=text_fmt(f), step="copy", seconds_left=120, cancellable=True))))
        if f >= 1.0:
            job = {}
            finish()
            emit("JobFinished", "(sssa{sv})", (jid, "success", "Done: it all went well.", D(details or {})))
            emit("StateChanged", "", None); return False
        return True
    jobs[jid] = state
    GLib.timeout_add(300, tick)
    if question:
        GLib.timeout_add(500, lambda: (emit("Question", "(ssa{sv})", (jid, "q1", question)), False)[1])
    emit("StateChanged", "", None)
    return jid

jobs = {}

def call(c, sender, path, iface, method, params, inv):
    global job
    a = params.unpack()
    if method == "GetStatus":
        inv.return_value(GLib.Variant("(a{sv})", (D(status()),)))
    elif method == "ListSticks":
        inv.return_value(GLib.Variant("(aa{sv})", ([D(s) for s in sticks(a[0])],)))
    elif method == "Create":
        def fin():
            backups.append(dict(uuid="u1", name="SanDisk Ultra (16 GB)", paired=now, last_success=int(time.time()), last_attempt=int(time.time()),
                                last_result="success", last_message="Your backup Tails is up to date.", age_text="Updated just now", plugged=True, device="/dev/sdb"))
        inv.return_value(GLib.Variant("(s)", (run_job("create", fin, lambda f: "Copying your Persistent Storage: %.1f GB of 3.4 GB" % (3.4 * f)),)))
    elif method == "UpdateNow":
        inv.return_value(GLib.Variant("(s)", (run_job("update", lambda: None, lambda f: "Copying: %.1f GB of 3.4 GB, about 2 minutes left" % (3.4 * f)),)))
    elif method == "Verify":
        det = dict(differences=[dict(path="Persistent/notes.txt", change="changed", text="Changed since the last update."),
                                dict(path="Persistent/Tor Browser/report.pdf", change="added", text="Only in this Tails.")],
                   checks=[dict(name="Bootloader", ok=True, text="The backup can start on BIOS and UEFI computers."),
                           dict(name="System", ok=False, text="The backup runs Tails 6.9 and this Tails runs 6.10: the next update refreshes it.")])
        inv.return_value(GLib.Variant("(s)", (run_job("verify", lambda: None, lambda f: "Comparing files: %d%%" % (100 * f), det),)))
    elif method == "Restore":
        q = dict(title=V("Delete files from this Tails?"), body=V("The backup does not have 12 files that this Tails has, such as Persistent/notes.txt. Restoring deletes them from this Tails."),
                 choices=GLib.Variant("a(ss)", [("cancel", "Cancel"), ("restore", "Delete and Restore")]), destructive=V("restore"))
        inv.return_value(GLib.Variant("(s)", (run_job("restore", lambda: None, lambda f: "Restoring: %d%%" % (100 * f), question=q),)))
    elif method == "Pair":
        inv.return_value(GLib.Variant("(s)", (run_job("pair", lambda: None, lambda f: "Pairing: %d%%" % (100 * f)),)))
    elif method == "Promote":
        inv.return_value(GLib.Variant("(s)", (run_job("promote", lambda: None, lambda f: "Promoting: %d%%" % (100 * f)),)))
    elif method == "Cancel":
        if a[0] in jobs: jobs[a[0]]["cancelled"] = True
        inv.return_value(None)
    elif method == "Answer":
        st = jobs.get(a[0])
        if st:
            if a[2] == "cancel": st["cancelled"] = True
            st["waiting"] = False
        inv.return_value(None)
    elif method == "SetReminders":
        reminders[0] = a[0]
        if a[1]: reminders[1] = a[1]
        inv.return_value(None); emit("StateChanged", "", None)
    else:
        inv.return_dbus_error("org.boum.tails.Backup1.Error.Failed", "Not in this fake.")

def acquired(c, name):
    print("fake: owns", name, flush=True)

def bus(c, name):
    global conn
    conn = c
    c.register_object("/org/boum/tails/Backup1", Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0], call, None, None)

Gio.bus_own_name(Gio.BusType.SESSION, "org.boum.tails.Backup1", Gio.BusNameOwnerFlags.NONE, bus, acquired, None)
GLib.MainLoop().run()
