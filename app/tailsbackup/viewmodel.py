"""What the window shows, computed from the agent's records alone (no GTK, no D-Bus).

The agent's records are the dictionaries of docs/dbus-api.md, unpacked to Python values: a
missing key is its zero value and an unknown key is ignored. Every text is a whole sentence or
label for a person, translated here or already translated by the agent.
"""

from dataclasses import dataclass, field
from typing import List, Optional

from .i18n import _, ngettext

# The pages of the window, and those that --page may name.
PAGES = ("overview", "create", "pair", "restore", "verify", "promote")


@dataclass
class BackupRow:
    """One paired backup in the overview."""

    uuid: str
    title: str  # the stick's name
    age: str  # "Updated 3 days ago", from the agent
    last_attempt: str  # "Last attempt: 2 hours ago"; "" when never tried
    last_message: str  # the sentence that ended the last attempt
    result_icon: str  # an icon name for the last result
    plugged: bool
    plugged_text: str
    passphrase_free: bool = False  # its updates need no passphrase
    passphrase_free_next: bool = False  # turned on: the next update asks it once more


@dataclass
class JobView:
    """The job under way."""

    id: str
    kind: str
    title: str
    fraction: float  # 0–1, or −1 when unknown
    text: str
    cancellable: bool
    waiting: bool = False  # the job waits for its stick to be plugged in; text says which


@dataclass
class Overview:
    """The overview page, or which other page replaces it."""

    page: str  # "first-run", "overview", "promote"
    hero_icon: str = ""
    hero_title: str = ""
    hero_text: str = ""
    action: str = ""  # "update", "plug" or "" (a job runs, or no Persistent Storage)
    action_label: str = ""
    backups: List[BackupRow] = field(default_factory=list)
    job: Optional[JobView] = None
    paused_text: str = ""
    reminders_enabled: bool = False
    reminder_period_days: int = 7
    reminder_text: str = ""


def ago(seconds):
    """How long ago, in words: "just now", "5 minutes ago", "3 days ago"."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return _("just now")
    minutes = seconds // 60
    if minutes < 60:
        return ngettext("{n} minute ago", "{n} minutes ago", minutes).format(n=minutes)
    hours = minutes // 60
    if hours < 24:
        return ngettext("{n} hour ago", "{n} hours ago", hours).format(n=hours)
    days = hours // 24
    return ngettext("{n} day ago", "{n} days ago", days).format(n=days)


_RESULT_ICONS = {
    "success": "object-select-symbolic",
    "failed": "dialog-warning-symbolic",
    "cancelled": "process-stop-symbolic",
    "incomplete": "dialog-warning-symbolic",
}


def _result_sentence(result):
    return {
        "success": _("The update was complete."),
        "failed": _("The update failed."),
        "cancelled": _("The update was cancelled."),
        "incomplete": _("The update did not finish; the next one finishes it."),
    }.get(result, "")


def job_title(kind, waiting=False):
    """What a job is doing, as the title of its page; waiting: it waits for its stick. The
    window names the job that turns the updates without the passphrase on or off
    passphrase-free-on or passphrase-free-off (the agent's kind is passphrase-free)."""
    if waiting:
        return {
            "pair": _("Plug in your Tails stick"),
        }.get(kind, _("Plug in your backup Tails"))
    return {
        "forget": _("Forgetting your backup Tails"),
        "passphrase-free": _("Changing how your backup Tails is unlocked"),
        "passphrase-free-on": _("Turning on updates without the passphrase"),
        "passphrase-free-off": _("Turning off updates without the passphrase"),
        "update": _("Updating your backup Tails"),
        "create": _("Creating your backup Tails"),
        "pair": _("Pairing your backup Tails"),
        "restore": _("Restoring your Persistent Storage"),
        "verify": _("Checking your backup Tails"),
        "promote": _("Making this Tails the main one"),
    }.get(kind, _("Working"))


def job_view(job):
    """The job under way from the status' job record (or a Progress merged into it); None if none."""
    if not job or not job.get("id"):
        return None
    fraction = job.get("fraction", -1.0)
    if fraction is None:
        fraction = -1.0
    waiting = bool(job.get("waiting_for_stick", False))
    return JobView(
        id=job["id"],
        kind=job.get("kind", ""),
        title=job_title(job.get("kind", ""), waiting),
        fraction=float(fraction),
        text=job.get("text", "") or job.get("step", ""),
        cancellable=bool(job.get("cancellable", True)),
        waiting=waiting,
    )


def backup_row(b, now):
    last_attempt = b.get("last_attempt", 0)
    result = b.get("last_result", "")
    plugged = bool(b.get("plugged", False))
    return BackupRow(
        uuid=b.get("uuid", ""),
        title=b.get("name", "") or _("Backup Tails"),
        age=b.get("age_text", "") or _("Never updated"),
        last_attempt=_("Last attempt: {when}").format(when=ago(now - last_attempt)) if last_attempt else "",
        last_message=b.get("last_message", "") or _result_sentence(result),
        result_icon=_RESULT_ICONS.get(result, ""),
        plugged=plugged,
        plugged_text=_("Plugged in") if plugged else _("Not plugged in"),
        passphrase_free=bool(b.get("passphrase_free", False)),
        passphrase_free_next=bool(b.get("passphrase_free_next", False)),
    )


def _primary(backups):
    """The backup the top of the overview is about: a plugged one, else the least recently updated."""
    plugged = [b for b in backups if b.plugged]
    return plugged[0] if plugged else None


def overview(status, now):
    """The overview of the status record of GetStatus, at the Unix time now."""
    if status.get("is_backup", False):
        return Overview(page="promote")
    raw = status.get("backups", []) or []
    if not raw:
        return Overview(page="first-run")
    backups = [backup_row(b, now) for b in raw]
    backups_by_age = sorted(zip(raw, backups), key=lambda p: p[0].get("last_success", 0))
    stalest = backups_by_age[0][1]
    v = Overview(
        page="overview",
        backups=backups,
        job=job_view(status.get("job", {})),
        paused_text=status.get("paused_text", "") if status.get("paused", False) else "",
        reminders_enabled=bool(status.get("reminders_enabled", False)),
        reminder_period_days=int(status.get("reminder_period_days", 0) or 7),
        reminder_text=status.get("reminder_text", ""),
    )
    plugged = _primary(backups)
    shown = plugged or stalest
    v.hero_title = shown.age
    v.hero_icon = "drive-removable-media-symbolic"
    if not status.get("persistent_storage", True):
        v.hero_text = _("Unlock your Persistent Storage to update your backup: there is nothing to back up without it.")
        return v
    if v.job is not None:
        v.hero_title, v.hero_text = v.job.title, shown.age
        return v
    if plugged is not None:
        v.action, v.action_label = "update", _("Update now")
        if len(backups) > 1:
            v.hero_text = _("{name} is plugged in.").format(name=plugged.title)
        else:
            v.hero_text = _("Your backup Tails is plugged in.")
    else:
        v.action, v.action_label = "plug", _("Plug in your backup Tails")
        v.hero_text = _("The update starts by itself when you plug in your backup Tails.")
    return v


@dataclass
class BackupPage:
    """The page of one paired backup: its updates without the passphrase, and forgetting it."""

    uuid: str
    title: str
    age: str
    passphrase_free: bool  # the switch is on
    passphrase_free_text: str  # what the switch does, and its state
    sensitive: bool  # no job runs: the switch and Forget can be used


def backup_page(status, uuid, now):
    """The page of the paired backup uuid in the status, or None when it is not paired (any more)."""
    raw = next((b for b in status.get("backups", []) or [] if b.get("uuid") == uuid), None)
    if raw is None or status.get("is_backup", False):
        return None
    row = backup_row(raw, now)
    if row.passphrase_free:
        text = _("A key kept in this Tails' Persistent Storage opens this backup: plugging it in is enough. "
                 "Turned off, the key and its key slot on the stick are removed; the stick must be plugged in.")
    elif row.passphrase_free_next:
        text = _("Its next update asks the passphrase once more, then keeps a key in this Tails' Persistent Storage "
                 "that opens the backup without it.")
    else:
        text = _("Each update asks the backup's passphrase. Turned on, a key kept in this Tails' Persistent Storage "
                 "opens it instead; the passphrase is asked once, with the stick plugged in.")
    job = status.get("job") or {}
    return BackupPage(
        uuid=uuid,
        title=row.title,
        age=row.age,
        passphrase_free=row.passphrase_free or row.passphrase_free_next,
        passphrase_free_text=text,
        sensitive=not job.get("id"),
    )


@dataclass
class StickRow:
    device: str
    title: str
    subtitle: str  # the size, or the reason why it cannot be used
    usable: bool
    confirm: str
    erase: List[str]


def stick_rows(sticks):
    """The sticks of ListSticks: usable ones first, each with its size; the others with the reason."""
    rows = []
    for s in sticks:
        usable = bool(s.get("usable", False))
        name = s.get("name", "") or s.get("device", "")
        size = s.get("size_text", "")
        if usable:
            subtitle = size
        else:
            subtitle = s.get("reason", "") or _("This stick cannot be used.")
        rows.append(StickRow(
            device=s.get("device", ""),
            # An unusable stick shows its reason below, not its size: the size goes into the
            # title, unless the agent's name already says it ("SanDisk Cruzer Blade, 16.0 GB").
            title=_("{name} ({size})").format(name=name, size=size) if size and not usable and size not in name else name,
            subtitle=subtitle,
            usable=usable,
            confirm=s.get("confirm", ""),
            erase=list(s.get("erase", []) or []),
        ))
    rows.sort(key=lambda r: not r.usable)
    return rows


def choose_texts(purpose):
    """The title, explanation and button label of the page that picks a stick for purpose."""
    return {
        "create": (
            _("Choose a USB stick for your backup Tails"),
            _("The stick will be erased and become a copy of this Tails with your Persistent Storage. It must be at least as big as this stick."),
            _("Next"),
        ),
        "pair": (
            _("Choose your Tails stick"),
            _("The Tails stick you choose becomes the backup of this Tails: its Persistent Storage will be replaced by a copy of yours at each update."),
            _("Pair"),
        ),
        "restore": (
            _("Choose the backup to restore from"),
            _("Your Persistent Storage will be replaced by the one of the backup you choose. Tails asks before anything is deleted."),
            _("Restore"),
        ),
        "verify": (
            _("Choose the backup to check"),
            _("Tails compares the backup with this Tails and checks that it can start. Nothing is changed on either stick."),
            _("Check"),
        ),
    }[purpose]


@dataclass
class ChooseNext:
    """What the button of the page that picks a stick does."""

    sensitive: bool
    device: str  # the device to pass to the agent; "" lets the job wait for its stick
    hint: str  # a sentence under the list, "" for none


def choose_next(purpose, rows, picked):
    """The button of the choose page for the StickRows listed and the device picked ("" none).

    With no stick to use for pair, restore or verify, the button starts the job all the same:
    the agent then waits for the stick and the job page says what to plug in. Creating needs
    the person to confirm which stick is erased, so it never starts without one.
    """
    if picked:
        return ChooseNext(True, picked, "")
    if purpose == "create" or any(r.usable for r in rows):
        return ChooseNext(False, "", "")
    hint = {
        "pair": _("No Tails stick is plugged in. Press Pair, then plug in the Tails stick to pair: the pairing starts by itself."),
        "restore": _("No backup Tails is plugged in. Press Restore, then plug in your backup Tails: you are asked before anything is changed."),
        "verify": _("Your backup Tails is not plugged in. Press Check, then plug it in: the check starts by itself."),
    }[purpose]
    return ChooseNext(True, "", hint)


@dataclass
class Finding:
    icon: str
    title: str
    subtitle: str


@dataclass
class ResultView:
    icon: str
    title: str
    text: str
    differences: List[Finding] = field(default_factory=list)
    checks: List[Finding] = field(default_factory=list)


def _success_title(kind):
    return {
        "forget": _("Your backup Tails is forgotten"),
        "passphrase-free-on": _("Updates without the passphrase are on"),
        "passphrase-free-off": _("Updates without the passphrase are off"),
        "update": _("Your backup Tails is up to date"),
        "create": _("Your backup Tails is ready"),
        "pair": _("Your backup Tails is paired"),
        "restore": _("Your Persistent Storage is restored"),
        "verify": _("Your backup Tails was checked"),
        "promote": _("This Tails is now the main one"),
    }.get(kind, _("Done"))


_CHANGE_ICONS = {
    "added": "list-add-symbolic",
    "removed": "list-remove-symbolic",
    "changed": "document-edit-symbolic",
    "missing": "list-add-symbolic",  # only on this Tails: the next update adds it to the backup
}


def result_view(kind, result, text, details):
    """The page that a JobFinished shows."""
    details = details or {}
    if result == "success":
        icon, title = "object-select-symbolic", _success_title(kind)
    elif result == "cancelled":
        icon, title = "process-stop-symbolic", _("Cancelled")
    elif kind == "verify" and details.get("differences"):
        # The check ran and found what the agent lists below: not an error of the check.
        icon, title = "dialog-warning-symbolic", _("Your backup Tails is not up to date")
    elif kind == "verify" and any(not c.get("ok", False) for c in details.get("checks", []) or []):
        icon, title = "dialog-warning-symbolic", _("Your backup Tails has a problem")
    else:
        icon, title = "dialog-warning-symbolic", _("Something went wrong")
    v = ResultView(icon=icon, title=title, text=text)
    for d in details.get("differences", []) or []:
        v.differences.append(Finding(
            icon=_CHANGE_ICONS.get(d.get("change", ""), "document-edit-symbolic"),
            title=d.get("path", ""),
            subtitle=d.get("text", ""),
        ))
    for c in details.get("checks", []) or []:
        ok = bool(c.get("ok", False))
        v.checks.append(Finding(
            icon="object-select-symbolic" if ok else "dialog-warning-symbolic",
            title=c.get("name", ""),
            subtitle=c.get("text", ""),
        ))
    return v
