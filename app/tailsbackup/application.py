"""The application: one instance per session; a second start only switches the window's page."""

import os
import sys

import gi

gi.require_version("Gtk", "4.0")
gi.require_version("Adw", "1")
from gi.repository import Adw, Gio, GLib  # noqa: E402

from . import i18n  # noqa: E402
from .i18n import _  # noqa: E402
from .viewmodel import PAGES  # noqa: E402

APP_ID = "org.boum.tails.Backup"


class Application(Adw.Application):
    def __init__(self):
        super().__init__(application_id=APP_ID, flags=Gio.ApplicationFlags.HANDLES_COMMAND_LINE)
        self.add_main_option("page", 0, GLib.OptionFlags.NONE, GLib.OptionArg.STRING,
                             _("The page to show: {pages}").format(pages=", ".join(PAGES)), "PAGE")
        self.window = None

    def do_startup(self):
        Adw.Application.do_startup(self)
        # For screenshots and tests: TAILS_BACKUP_APP_COLOR_SCHEME=dark or light forces one.
        scheme = {"dark": Adw.ColorScheme.FORCE_DARK, "light": Adw.ColorScheme.FORCE_LIGHT}.get(
            os.environ.get("TAILS_BACKUP_APP_COLOR_SCHEME", ""))
        if scheme is not None:
            Adw.StyleManager.get_default().set_color_scheme(scheme)

    def do_command_line(self, command_line):
        options = command_line.get_options_dict().end().unpack()
        page = options.get("page", "overview")
        if page not in PAGES:
            command_line.printerr(_("Unknown page {page}: use one of {pages}.\n").format(
                page=page, pages=", ".join(PAGES)))
            return 2
        if self.window is None:
            from .window import Window
            connection = Gio.bus_get_sync(Gio.BusType.SESSION, None)
            self.window = Window(self, connection)
        self.window.open_page(page)
        self.window.window.present()
        return 0


def main(argv=None):
    i18n.setup()
    return Application().run(sys.argv if argv is None else argv)
