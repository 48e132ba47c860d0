"""The window: loads each page's .ui, shows the view models, and calls the agent."""

import os
import time

from gi.repository import Adw, Gio, GLib, Gtk

from . import viewmodel
from .client import BUS_NAME, Client
from .i18n import DOMAIN, _, bidi_builder

UI_DIR = os.environ.get("TAILS_BACKUP_APP_UI") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ui")

# The page the back button of each page goes to.
_BACK = {"choose": "overview", "confirm": "choose", "backup": "overview"}


def _load(name):
    builder = Gtk.Builder()
    builder.set_translation_domain(DOMAIN)
    builder.add_from_file(os.path.join(UI_DIR, name + ".ui"))
    bidi_builder(builder)
    return builder


def _row(title, subtitle="", icon=""):
    """A row with a title and a subtitle taken as plain text (they come from the agent)."""
    row = Adw.ActionRow(title=title, subtitle=subtitle, use_markup=False)
    row.set_subtitle_lines(0)
    if icon:
        image = Gtk.Image(icon_name=icon)
        row.add_prefix(image)
    return row


def _clear_group(group, rows):
    for row in rows:
        group.remove(row)
    rows.clear()


class Window:
    """The Backup window and what it does; one per application."""

    def __init__(self, app, connection):
        self.app = app
        self.client = Client(connection)
        b = _load("window")
        self.window = b.get_object("window")
        self.window.set_application(app)
        self.toasts = b.get_object("toasts")
        self.stack = b.get_object("stack")
        self.back = b.get_object("back")
        self.back.connect("clicked", self._on_back)

        self.pages = {}
        for name in ("no-service", "first-run", "overview", "choose", "confirm", "job", "result", "promote", "backup"):
            builder = _load(name)
            self.pages[name] = builder
            self.stack.add_named(builder.get_object("page"), name)
        self._wire()

        self.status = {}
        self.present = False  # the agent's name is on the bus
        self.purpose = ""  # the flow of the choose and confirm pages
        self.picked = None  # the StickRow picked
        self.job_id = ""  # the job this window shows on the job page
        self.job_kind = ""
        self.wanted = "overview"  # the page asked for (--page), shown once the agent answers
        self.dialogs = {}  # question id → its dialog
        self._stick_rows, self._backup_rows, self._erase_rows = [], [], []
        self._listed = []  # the StickRows of the choose page
        self._last_progress = ("", {})  # the last Progress: its job and fields
        self._finding_rows = {"checks": [], "differences": []}
        self._check_group = None
        self._updating_reminders = False
        self.backup_uuid = ""  # the backup of the backup page
        self._updating_switch = False

        self.client.subscribe({
            "StateChanged": self._on_state_changed,
            "Progress": self._on_progress,
            "Message": self._on_message,
            "Question": self._on_question,
            "JobFinished": self._on_job_finished,
        })
        self.show("no-service")
        Gio.bus_watch_name_on_connection(connection, BUS_NAME, Gio.BusNameWatcherFlags.NONE,
                                         self._on_appeared, self._on_vanished)

    # ---- the widgets of the pages

    def _obj(self, page, name):
        return self.pages[page].get_object(name)

    def _wire(self):
        o = self._obj
        o("first-run", "create").connect("clicked", lambda _b: self.choose("create"))
        o("first-run", "pair").connect("clicked", lambda _b: self.choose("pair"))
        o("overview", "update").connect("clicked", self._on_update_now)
        o("overview", "job_cancel").connect("clicked", self._on_cancel)
        for purpose in ("verify", "restore", "create", "pair"):
            o("overview", purpose + "_button").connect("clicked", lambda _b, p=purpose: self.choose(p))
        o("overview", "reminders_switch").connect("notify::active", self._on_reminders_changed)
        o("overview", "period").connect("value-changed", self._on_reminders_changed)
        o("choose", "next").connect("clicked", self._on_choose_next)
        o("confirm", "understand").connect(
            "toggled", lambda c: o("confirm", "go").set_sensitive(c.get_active()))
        o("confirm", "go").connect("clicked", self._on_create)
        o("job", "cancel").connect("clicked", self._on_cancel)
        o("result", "done").connect("clicked", lambda _b: self.go_overview())
        o("promote", "promote").connect("clicked", self._on_promote)
        o("backup", "passphrase_switch").connect("notify::active", self._on_passphrase_free)
        o("backup", "forget").connect("clicked", self._on_forget)

    def show(self, page):
        # Only the page shown is visible: GTK 4.8 shows the other pages of a stack to screen
        # readers (AT-SPI) too, as if they were on the screen.
        self.stack.get_child_by_name(page).set_visible(True)
        self.stack.set_visible_child_name(page)
        for name in self.pages:
            if name != page:
                self.stack.get_child_by_name(name).set_visible(False)
        self.back.set_visible(page in _BACK)

    def toast(self, text):
        toast = Adw.Toast(title=GLib.markup_escape_text(text))
        toast.set_timeout(8)
        self.toasts.add_toast(toast)

    def _on_back(self, _button):
        self.show(_BACK.get(self.stack.get_visible_child_name(), "overview"))
        if self.stack.get_visible_child_name() == "overview":
            self.go_overview()

    def _error(self, text):
        self.toast(text)

    # ---- the agent on the bus

    def _on_appeared(self, _conn, _name, _owner):
        self.present = True
        self.refresh(then=self._show_wanted)

    def _on_vanished(self, _conn, _name):
        self.present = False
        self.status = {}
        for dialog in list(self.dialogs.values()):
            dialog.close()
        self.show("no-service")

    def open_page(self, page):
        """Shows the page asked for on the command line (once the agent answers)."""
        self.wanted = page if page in viewmodel.PAGES else "overview"
        if self.present:
            self.refresh(then=self._show_wanted)

    def _show_wanted(self):
        page, self.wanted = self.wanted, "overview"
        if page in ("create", "pair", "restore", "verify"):
            self.choose(page)
        elif page == "promote" and not self.status.get("is_backup", False):
            self.go_overview()
            self.toast(_("This Tails is not a backup Tails, so there is nothing to make the main one."))
        else:
            self.go_overview()

    def refresh(self, then=None):
        def done(status):
            self.status = status or {}
            if self.stack.get_visible_child_name() in ("no-service", "overview", "first-run", "promote"):
                self.go_overview()
            elif self.stack.get_visible_child_name() == "backup":
                self.go_backup(self.backup_uuid)
            if then is not None:
                then()
        self.client.call("GetStatus", (), done, self._error)

    def _on_state_changed(self):
        self.refresh()
        if self.stack.get_visible_child_name() == "choose":
            self._list_sticks()

    # ---- overview, first run, promote

    def go_overview(self):
        v = viewmodel.overview(self.status, time.time())
        if v.page != "overview":
            self.show(v.page)
            return
        o = lambda name: self._obj("overview", name)  # noqa: E731
        o("hero_icon").set_from_icon_name(v.hero_icon)
        o("hero_title").set_label(v.hero_title)
        o("hero_text").set_label(v.hero_text)
        update = o("update")
        update.set_visible(v.action != "")
        update.set_label(v.action_label)
        update.set_sensitive(v.action == "update")
        if v.action == "update":
            update.add_css_class("suggested-action")
        else:
            update.remove_css_class("suggested-action")
        o("job").set_visible(v.job is not None)
        if v.job is not None:
            self._show_progress(o("job_progress"), o("job_text"), o("job_cancel"),
                                v.job.fraction, v.job.text, v.job.cancellable)
        o("paused").set_visible(bool(v.paused_text))
        o("paused").set_label(v.paused_text)

        group = o("backups")
        _clear_group(group, self._backup_rows)
        for b in v.backups:
            lines = [b.age]
            if b.last_attempt:
                lines.append(b.last_attempt)
            if b.last_message:
                lines.append(b.last_message)
            if b.passphrase_free:
                lines.append(_("Updated without asking the passphrase"))
            row = _row(b.title, "\n".join(lines), b.result_icon or "drive-removable-media-symbolic")
            plugged = Gtk.Label(label=b.plugged_text, valign=Gtk.Align.CENTER)
            plugged.add_css_class("dim-label" if not b.plugged else "success")
            row.add_suffix(plugged)
            # The backup's own page: its updates without the passphrase, forgetting it.
            more = Gtk.Button(icon_name="go-next-symbolic", valign=Gtk.Align.CENTER)
            more.add_css_class("flat")
            more.connect("clicked", lambda _b, uuid=b.uuid: self.go_backup(uuid))
            row.add_suffix(more)
            row.set_activatable_widget(more)
            group.add(row)
            self._backup_rows.append(row)

        self._updating_reminders = True
        o("reminders_switch").set_active(v.reminders_enabled)
        o("period").set_value(v.reminder_period_days)
        o("period_row").set_sensitive(v.reminders_enabled)
        o("period_row").set_subtitle(v.reminder_text)
        self._updating_reminders = False
        self.show("overview")

    # ---- one backup's page

    def go_backup(self, uuid):
        v = viewmodel.backup_page(self.status, uuid, time.time())
        if v is None:
            self.go_overview()
            return
        self.backup_uuid = uuid
        o = lambda name: self._obj("backup", name)  # noqa: E731
        o("title").set_label(v.title)
        o("age").set_label(v.age)
        self._updating_switch = True
        o("passphrase_switch").set_active(v.passphrase_free)
        self._updating_switch = False
        o("passphrase_row").set_subtitle(v.passphrase_free_text)
        o("passphrase_row").set_sensitive(v.sensitive)
        o("forget").set_sensitive(v.sensitive)
        self.show("backup")

    def _on_passphrase_free(self, switch, _pspec):
        if self._updating_switch or not self.backup_uuid:
            return
        on = switch.get_active()
        kind = "passphrase-free-on" if on else "passphrase-free-off"

        def failed(text):
            self._error(text)
            self.go_backup(self.backup_uuid)
        self.client.call("SetPassphraseFree", (self.backup_uuid, on), lambda job: self._start_job(job, kind), failed)

    def _on_forget(self, _button):
        if self.backup_uuid:
            # The agent asks the confirmation (a Question that says what goes and what stays).
            self.client.call("Forget", (self.backup_uuid,), lambda job: self._start_job(job, "forget"), self._error)

    @staticmethod
    def _show_progress(bar, label, cancel, fraction, text, cancellable):
        if fraction < 0:
            bar.pulse()
        else:
            bar.set_fraction(min(fraction, 1.0))
        label.set_label(text)
        cancel.set_sensitive(cancellable)

    def _on_update_now(self, _button):
        self.client.call("UpdateNow", ("",), lambda _job: self.refresh(), self._error)

    def _on_cancel(self, _button):
        job = self.job_id or self.status.get("job", {}).get("id", "")
        if job:
            self.client.call("Cancel", (job,), lambda _r: None, self._error)

    def _on_reminders_changed(self, *_args):
        if self._updating_reminders:
            return
        o = lambda name: self._obj("overview", name)  # noqa: E731
        enabled = o("reminders_switch").get_active()
        o("period_row").set_sensitive(enabled)
        days = int(o("period").get_value())
        self.client.call("SetReminders", (enabled, days), lambda _r: None, self._error)

    def _on_promote(self, _button):
        self.client.call("Promote", (), lambda job: self._start_job(job, "promote"), self._error)

    # ---- picking a stick

    def choose(self, purpose):
        self.purpose, self.picked = purpose, None
        title, text, button = viewmodel.choose_texts(purpose)
        o = lambda name: self._obj("choose", name)  # noqa: E731
        o("title").set_label(title)
        o("text").set_label(text)
        o("next").set_label(button)
        o("next").set_sensitive(False)
        self._check_group = None
        self._listed = []
        o("hint").set_visible(False)
        _clear_group(o("sticks"), self._stick_rows)
        self.show("choose")
        self._list_sticks()

    def _list_sticks(self):
        purpose = self.purpose

        def done(sticks):
            if self.purpose != purpose or self.stack.get_visible_child_name() != "choose":
                return
            self._show_sticks(viewmodel.stick_rows(sticks or []))
        self.client.call("ListSticks", (purpose,), done, self._error)

    def _show_sticks(self, rows):
        o = lambda name: self._obj("choose", name)  # noqa: E731
        group = o("sticks")
        picked = self.picked.device if self.picked else ""
        _clear_group(group, self._stick_rows)
        self.picked, self._check_group = None, None
        for r in rows:
            row = _row(r.title, r.subtitle)
            if r.usable:
                check = Gtk.CheckButton(valign=Gtk.Align.CENTER)
                if self._check_group is None:
                    self._check_group = check
                else:
                    check.set_group(self._check_group)
                check.connect("toggled", self._on_stick_toggled, r)
                row.add_prefix(check)
                row.set_activatable_widget(check)
                if r.device == picked:
                    check.set_active(True)
            else:
                row.add_prefix(Gtk.Image(icon_name="action-unavailable-symbolic"))
                row.add_css_class("dim-label")
            group.add(row)
            self._stick_rows.append(row)
        group.set_visible(bool(rows))
        o("empty").set_visible(not rows)
        self._listed = rows
        self._update_next()

    def _update_next(self):
        o = lambda name: self._obj("choose", name)  # noqa: E731
        n = viewmodel.choose_next(self.purpose, self._listed, self.picked.device if self.picked else "")
        o("next").set_sensitive(n.sensitive)
        o("hint").set_label(n.hint)
        o("hint").set_visible(bool(n.hint))
        return n

    def _on_stick_toggled(self, check, row):
        if check.get_active():
            self.picked = row
        elif self.picked is row:
            self.picked = None
        self._update_next()

    def _on_choose_next(self, _button):
        stick = self.picked
        if self.purpose == "create":
            if stick is not None:
                self._confirm_create(stick)
            return
        n = viewmodel.choose_next(self.purpose, self._listed, stick.device if stick else "")
        if not n.sensitive:
            return
        # device "": no stick to use is plugged in, the job waits for it (docs/dbus-api.md).
        method = {"pair": "Pair", "restore": "Restore", "verify": "Verify"}[self.purpose]
        kind = self.purpose
        self.client.call(method, (n.device,), lambda job: self._start_job(job, kind), self._error)

    def _confirm_create(self, stick):
        o = lambda name: self._obj("confirm", name)  # noqa: E731
        o("title").set_label(_("Everything on {name} will be erased").format(name=stick.title))
        _clear_group(o("erase"), self._erase_rows)
        for line in stick.erase:
            row = _row(line, icon="edit-delete-symbolic")
            o("erase").add(row)
            self._erase_rows.append(row)
        o("erase").set_visible(bool(stick.erase))
        o("understand").set_active(False)
        o("go").set_sensitive(False)
        self.show("confirm")

    def _on_create(self, _button):
        stick = self.picked
        if stick is None or not self._obj("confirm", "understand").get_active():
            return
        self.client.call("Create", (stick.device, stick.confirm),
                         lambda job: self._start_job(job, "create"), self._error)

    # ---- a job

    def _start_job(self, job, kind):
        self.job_id, self.job_kind = job, kind
        o = lambda name: self._obj("job", name)  # noqa: E731
        o("title").set_label(viewmodel.job_title(kind))
        o("progress").set_fraction(0)
        o("progress").set_visible(True)
        o("plug_icon").set_visible(False)
        o("text").set_label(_("Starting…"))
        o("cancel").set_sensitive(True)
        messages = o("messages")
        while (child := messages.get_first_child()) is not None:
            messages.remove(child)
        messages.set_visible(False)
        if self._last_progress[0] == job:
            self._show_job_progress(job, self._last_progress[1])
        self.show("job")

    def _show_job_progress(self, job, fields):
        o = lambda name: self._obj("job", name)  # noqa: E731
        v = viewmodel.job_view(dict(fields, id=job, kind=self.job_kind))
        # Waiting for its stick, the job says what to plug in, in place of a progress.
        o("title").set_label(v.title)
        o("plug_icon").set_visible(v.waiting)
        o("progress").set_visible(not v.waiting)
        self._show_progress(o("progress"), o("text"), o("cancel"), v.fraction, v.text, v.cancellable)

    def _on_progress(self, job, fields):
        fraction = float(fields.get("fraction", -1.0))
        text = fields.get("text", "")
        cancellable = bool(fields.get("cancellable", True))
        # A job's first Progress comes before the reply that names the job: kept for _start_job.
        self._last_progress = (job, fields)
        if job == self.job_id and self.stack.get_visible_child_name() == "job":
            self._show_job_progress(job, fields)
        status_job = self.status.get("job") or {}
        if status_job.get("id") == job:
            status_job.update(fields)
            if self.stack.get_visible_child_name() == "overview":
                o = lambda name: self._obj("overview", name)  # noqa: E731
                o("job").set_visible(True)
                self._show_progress(o("job_progress"), o("job_text"), o("job_cancel"),
                                    fraction, text, cancellable)

    def _on_message(self, job, level, text):
        if job == self.job_id and self.stack.get_visible_child_name() == "job":
            messages = self._obj("job", "messages")
            icon = "dialog-warning-symbolic" if level == "warning" else "dialog-information-symbolic"
            messages.append(_row(text, icon=icon))
            messages.set_visible(True)
        else:
            self.toast(text)

    def _on_question(self, job, question, fields):
        choices = fields.get("choices", []) or []
        if not choices:
            return
        dialog = Adw.MessageDialog(transient_for=self.window, modal=True,
                                   heading=fields.get("title", ""), body=fields.get("body", ""))
        destructive = fields.get("destructive", "")
        for cid, label in choices:
            dialog.add_response(cid, label)
            if cid == destructive:
                dialog.set_response_appearance(cid, Adw.ResponseAppearance.DESTRUCTIVE)
        safe = choices[0][0]
        dialog.set_default_response(safe)
        dialog.set_close_response(safe)

        def on_response(_dialog, choice):
            self.dialogs.pop(question, None)
            self.client.call("Answer", (job, question, choice), lambda _r: None, self._error)

        dialog.connect("response", on_response)
        self.dialogs[question] = dialog
        dialog.present()

    def _on_job_finished(self, job, result, text, details):
        for dialog in list(self.dialogs.values()):
            dialog.close()
        if job != self.job_id:
            # An update shown on the overview (or a job of another window): the overview
            # shows how it ended once the status is read again.
            if text:
                self.toast(text)
            self.refresh()
            return
        self.job_id = ""
        v = viewmodel.result_view(self.job_kind, result, text, details)
        o = lambda name: self._obj("result", name)  # noqa: E731
        o("icon").set_from_icon_name(v.icon)
        for cls in ("success", "warning"):
            o("icon").remove_css_class(cls)
        o("icon").add_css_class("success" if result == "success" else "warning")
        o("title").set_label(v.title)
        o("text").set_label(v.text)
        for name, findings in (("checks", v.checks), ("differences", v.differences)):
            group = o(name)
            _clear_group(group, self._finding_rows[name])
            for f in findings:
                row = _row(f.title, f.subtitle, f.icon)
                group.add(row)
                self._finding_rows[name].append(row)
            group.set_visible(bool(findings))
        self.show("result")
        self.refresh()
