"""Translations: every text the window shows goes through gettext, domain tails-backup."""

import gettext
import locale
import os
import unicodedata

DOMAIN = "tails-backup"
LOCALEDIR = "/usr/share/locale"


def setup(localedir=None):
    """Binds the domain for Python and for GtkBuilder (which uses the C library's gettext), to
    the catalogs of localedir, else of $TEXTDOMAINDIR (as gettext.sh reads it: the tests'
    compiled catalogs), else of /usr/share/locale."""
    localedir = localedir or os.environ.get("TEXTDOMAINDIR") or LOCALEDIR
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


# A right-to-left text's bidirectional controls (Unicode Standard Annex #9), as the Go side's
# l10n package puts them: GTK lays out each paragraph in the direction of its first strong
# letter, so an Arabic translation that begins with "Tails" or a value would be laid out left
# to right (its words in the wrong order, its full stop on the wrong side); an invisible RLM
# (RIGHT-TO-LEFT MARK) before it makes it right to left.
RLM = "\u200f"
_ISOLATE_OPEN = ("LRI", "RLI", "FSI")


def _first_strong(paragraph):
    """"R", "L" or None: the direction of the first strong character of paragraph, outside
    isolates (rule P2)."""
    depth = 0
    for ch in paragraph:
        cls = unicodedata.bidirectional(ch)
        if cls in _ISOLATE_OPEN:
            depth += 1
        elif cls == "PDI":
            depth = max(depth - 1, 0)
        elif depth == 0 and cls in ("R", "AL"):
            return "R"
        elif depth == 0 and cls == "L":
            return "L"
    return None


def bidi(text):
    """text with an RLM before each of its paragraphs that would start left to right, when it
    is written right to left (it has right-to-left letters): one that begins with a Latin word
    or a field ({name}), or whose only content is isolated values. Other texts are returned as
    they are."""
    if not text or not any(unicodedata.bidirectional(ch) in ("R", "AL") for ch in text):
        return text
    out = []
    for paragraph in text.split("\n"):
        d = _first_strong(paragraph)
        if d == "L" or (d is None and "\u2068" in paragraph):
            paragraph = RLM + paragraph
        out.append(paragraph)
    return "\n".join(out)


def _(message):
    return bidi(gettext.dgettext(DOMAIN, message))


def ngettext(singular, plural, n):
    return bidi(gettext.dngettext(DOMAIN, singular, plural, n))


# The properties of the .ui files' objects that GtkBuilder translates.
_TRANSLATED = ("label", "title", "subtitle", "description", "placeholder-text", "tooltip-text")


def bidi_builder(builder):
    """Applies bidi to the texts GtkBuilder translated (through the C library's gettext, past
    _), so that the .ui files' texts start right to left as _'s do."""
    for obj in builder.get_objects():
        for prop in _TRANSLATED:
            if obj.find_property(prop) is None:
                continue
            value = obj.get_property(prop)
            if isinstance(value, str) and bidi(value) != value:
                obj.set_property(prop, bidi(value))
