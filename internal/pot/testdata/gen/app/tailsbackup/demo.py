from .i18n import _, ngettext

WAIT = _("Starting…")
PLAIN = _("Plain text")
FILES = ngettext("{n} file – copied", "{n} files – copied", 2)
