"""Translations: every text the window shows goes through gettext, domain tails-backup."""

import gettext
import locale

DOMAIN = "tails-backup"
LOCALEDIR = "/usr/share/locale"


def setup(localedir=LOCALEDIR):
    """Binds the domain for Python and for GtkBuilder (which uses the C library's gettext)."""
    try:
        locale.setlocale(locale.LC_ALL, "")
    except locale.Error:
        pass
    for bind in (gettext.bindtextdomain, getattr(locale, "bindtextdomain", None)):
        if bind is not None:
            bind(DOMAIN, localedir)
    for bind in (gettext.textdomain, getattr(locale, "textdomain", None)):
        if bind is not None:
            bind(DOMAIN)


def _(message):
    return gettext.dgettext(DOMAIN, message)


def ngettext(singular, plural, n):
    return gettext.dngettext(DOMAIN, singular, plural, n)
