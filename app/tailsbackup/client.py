"""The agent's D-Bus API (docs/dbus-api.md) as asynchronous calls with a deadline each."""

from gi.repository import Gio, GLib

BUS_NAME = "org.boum.tails.Backup1"
OBJECT_PATH = "/org/boum/tails/Backup1"
INTERFACE = "org.boum.tails.Backup1"

# Every call has a deadline: quick questions a short one; the calls that start a job return at
# once with its id, but the agent may first look at the sticks through udisks.
TIMEOUT_MS = 25_000

# The argument types of each method.
_SIGNATURES = {
    "GetStatus": "()",
    "ListSticks": "(s)",
    "UpdateNow": "(s)",
    "Create": "(ss)",
    "Pair": "(s)",
    "Restore": "(s)",
    "Verify": "(s)",
    "Promote": "()",
    "Forget": "(s)",
    "SetPassphraseFree": "(sb)",
    "Cancel": "(s)",
    "Answer": "(sss)",
    "SetReminders": "(bu)",
    "Snooze": "()",
}


def error_text(err):
    """The sentence of a D-Bus error, without GDBus' prefix (the agent's messages are sentences)."""
    if Gio.DBusError.is_remote_error(err):
        Gio.DBusError.strip_remote_error(err)
    return err.message


class Client:
    """Calls the agent and delivers its signals; on_* callbacks run in the GLib main loop."""

    def __init__(self, connection):
        self._conn = connection
        self._subscriptions = []

    def call(self, method, args, on_done, on_error):
        """Calls method with args (a tuple); on_done gets the unpacked result (a single value, or
        None for no result), on_error the error's sentence."""
        params = GLib.Variant(_SIGNATURES[method], args) if args else None

        def done(conn, res):
            try:
                out = conn.call_finish(res)
            except GLib.Error as err:
                on_error(error_text(err))
                return
            values = out.unpack() if out is not None else ()
            on_done(values[0] if len(values) == 1 else None)

        self._conn.call(BUS_NAME, OBJECT_PATH, INTERFACE, method, params, None,
                        Gio.DBusCallFlags.NO_AUTO_START, TIMEOUT_MS, None, done)

    def subscribe(self, handlers):
        """handlers maps a signal name to a function of its unpacked arguments."""
        def on_signal(conn, sender, path, iface, name, params):
            handler = handlers.get(name)
            if handler is not None:
                handler(*params.unpack())

        sid = self._conn.signal_subscribe(BUS_NAME, INTERFACE, None, OBJECT_PATH, None,
                                          Gio.DBusSignalFlags.NONE, on_signal)
        self._subscriptions.append(sid)

    def close(self):
        for sid in self._subscriptions:
            self._conn.signal_unsubscribe(sid)
        self._subscriptions = []
