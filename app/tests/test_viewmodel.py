"""The view models: what the window shows for a status, a stick list and a job's end."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tailsbackup import viewmodel  # noqa: E402

NOW = 1_800_000_000
DAY = 86400


def backup(**kw):
    b = {"uuid": "u1", "name": "SanDisk Cruzer (16 GB)", "paired": NOW - 30 * DAY,
         "last_success": NOW - 3 * DAY, "last_attempt": NOW - 3 * DAY, "last_result": "success",
         "last_message": "Your backup Tails is up to date.", "age_text": "Updated 3 days ago",
         "plugged": False}
    b.update(kw)
    return b


def status(**kw):
    s = {"is_backup": False, "persistent_storage": True, "backups": [backup()],
         "reminders_enabled": True, "reminder_period_days": 7,
         "reminder_text": "Next reminder in about 4 days, unless your backup is updated before.",
         "paused": False, "paused_text": "", "job": {}}
    s.update(kw)
    return s


class OverviewTest(unittest.TestCase):
    def test_pages(self):
        cases = [
            ("no backup", status(backups=[]), "first-run"),
            ("a missing backups key", {}, "first-run"),
            ("a backup Tails", status(is_backup=True), "promote"),
            ("a paired backup", status(), "overview"),
        ]
        for name, s, page in cases:
            with self.subTest(name):
                self.assertEqual(viewmodel.overview(s, NOW).page, page)

    def test_action(self):
        cases = [
            ("not plugged", status(), "plug", "Plug in your backup Tails", False),
            ("plugged", status(backups=[backup(plugged=True, device="/dev/sdb")]), "update", "Update now", False),
            ("an update runs", status(backups=[backup(plugged=True)],
                                      job={"id": "j1", "kind": "update", "fraction": 0.25,
                                           "text": "Copying: 1 GB of 4 GB", "cancellable": True}),
             "", "", True),
            ("no Persistent Storage", status(persistent_storage=False, backups=[backup(plugged=True)]),
             "", "", False),
        ]
        for name, s, action, label, job in cases:
            with self.subTest(name):
                v = viewmodel.overview(s, NOW)
                self.assertEqual(v.action, action)
                self.assertEqual(v.action_label, label)
                self.assertEqual(v.job is not None, job)
                self.assertTrue(v.hero_text, "the overview says nothing under its title")

    def test_job(self):
        v = viewmodel.overview(status(job={"id": "j1", "kind": "update", "fraction": 0.25,
                                           "text": "Copying: 1 GB of 4 GB", "cancellable": False}), NOW)
        self.assertEqual((v.job.id, v.job.fraction, v.job.text, v.job.cancellable),
                         ("j1", 0.25, "Copying: 1 GB of 4 GB", False))
        self.assertEqual(v.job.title, "Updating your backup Tails")
        # Before the first Progress the fraction is unknown.
        v = viewmodel.overview(status(job={"id": "j2", "kind": "update"}), NOW)
        self.assertEqual(v.job.fraction, -1.0)

    def test_job_waiting_for_its_stick(self):
        text = "Plug in your backup Tails: the comparison starts as soon as it is plugged in."
        v = viewmodel.overview(status(job={"id": "verify-1", "kind": "verify", "fraction": -1.0, "step": text,
                                           "text": text, "cancellable": True, "waiting_for_stick": True}), NOW)
        self.assertTrue(v.job.waiting)
        self.assertEqual((v.job.title, v.job.text, v.job.cancellable), ("Plug in your backup Tails", text, True))
        self.assertEqual(v.hero_title, "Plug in your backup Tails")
        pair = viewmodel.job_view({"id": "pair-1", "kind": "pair", "step": "Plug in the Tails stick.", "waiting_for_stick": True})
        self.assertEqual((pair.title, pair.text), ("Plug in your Tails stick", "Plug in the Tails stick."))
        # Once plugged in, the job's own title comes back.
        v = viewmodel.job_view({"id": "verify-1", "kind": "verify", "step": "Comparing.", "waiting_for_stick": False})
        self.assertFalse(v.waiting)
        self.assertEqual(v.title, "Checking your backup Tails")

    def test_backup_rows(self):
        v = viewmodel.overview(status(backups=[
            backup(),
            backup(uuid="u2", name="Kingston", last_attempt=NOW - 2 * 3600, last_result="failed",
                   last_message="", age_text="Never updated", last_success=0, plugged=True),
        ]), NOW)
        a, b = v.backups
        self.assertEqual((a.title, a.age, a.last_attempt, a.last_message, a.plugged_text),
                         ("SanDisk Cruzer (16 GB)", "Updated 3 days ago", "Last attempt: 3 days ago",
                          "Your backup Tails is up to date.", "Not plugged in"))
        self.assertEqual(a.result_icon, "object-select-symbolic")
        # No message from the agent: the result in a sentence of our own.
        self.assertEqual((b.last_attempt, b.last_message, b.plugged_text),
                         ("Last attempt: 2 hours ago", "The update failed.", "Plugged in"))
        # The top of the page is about the plugged backup, named since there are two.
        self.assertEqual(v.hero_title, "Never updated")
        self.assertEqual(v.hero_text, "Kingston is plugged in.")

    def test_never_tried(self):
        row = viewmodel.overview(status(backups=[backup(last_attempt=0, last_result="", last_message="",
                                                        age_text="")]), NOW).backups[0]
        self.assertEqual((row.last_attempt, row.last_message, row.age), ("", "", "Never updated"))

    def test_reminders_and_pause(self):
        v = viewmodel.overview(status(reminders_enabled=False, reminder_period_days=0, paused=True,
                                      paused_text="Automatic updates are paused during the restore."), NOW)
        self.assertEqual((v.reminders_enabled, v.reminder_period_days), (False, 7))
        self.assertEqual(v.paused_text, "Automatic updates are paused during the restore.")
        v = viewmodel.overview(status(paused=False, paused_text="stale"), NOW)
        self.assertEqual(v.paused_text, "")


class AgoTest(unittest.TestCase):
    def test_ago(self):
        for seconds, want in [(-5, "just now"), (30, "just now"), (60, "1 minute ago"),
                              (59 * 60, "59 minutes ago"), (3600, "1 hour ago"),
                              (DAY - 1, "23 hours ago"), (DAY, "1 day ago"), (40 * DAY, "40 days ago")]:
            with self.subTest(seconds):
                self.assertEqual(viewmodel.ago(seconds), want)


class SticksTest(unittest.TestCase):
    def test_rows(self):
        rows = viewmodel.stick_rows([
            {"device": "/dev/sdc", "name": "Tiny", "size_text": "4.0 GB", "usable": False,
             "reason": "This stick is too small: it needs at least 8 GB."},
            {"device": "/dev/sdb", "name": "SanDisk", "size_text": "15.5 GB", "usable": True,
             "erase": ["The Tails 6.10 on it", "2 partitions, 14.2 GB"], "confirm": "tok"},
            {"device": "/dev/sdd", "usable": False},
        ])
        got = [(r.device, r.title, r.subtitle, r.usable) for r in rows]
        self.assertEqual(got, [
            ("/dev/sdb", "SanDisk", "15.5 GB", True),
            ("/dev/sdc", "Tiny (4.0 GB)", "This stick is too small: it needs at least 8 GB.", False),
            ("/dev/sdd", "/dev/sdd", "This stick cannot be used.", False),
        ])
        self.assertEqual((rows[0].confirm, rows[0].erase), ("tok", ["The Tails 6.10 on it", "2 partitions, 14.2 GB"]))

    def test_size_once(self):
        rows = viewmodel.stick_rows([{"device": "/dev/sdb", "name": "SanDisk Cruzer Blade, 16.0 GB", "size_text": "16.0 GB",
                                      "usable": False, "reason": "This stick has no Tails on it."}])
        self.assertEqual(rows[0].title, "SanDisk Cruzer Blade, 16.0 GB")

    def test_choose_next(self):
        usable = viewmodel.stick_rows([{"device": "/dev/sdb", "name": "SanDisk", "usable": True}])
        unusable = viewmodel.stick_rows([{"device": "/dev/sdc", "name": "Tiny", "usable": False, "reason": "Too small."}])
        for purpose in ("pair", "restore", "verify"):
            with self.subTest(purpose):
                # Nothing to use plugged in: the job starts and waits for its stick.
                for rows in ([], unusable):
                    n = viewmodel.choose_next(purpose, rows, "")
                    self.assertEqual((n.sensitive, n.device), (True, ""))
                    self.assertTrue(n.hint.endswith(".") and "plug" in n.hint, n.hint)
                    self.assertIn(viewmodel.choose_texts(purpose)[2], n.hint, "the hint names the button")
                # A stick to choose: the person chooses it first.
                self.assertEqual(viewmodel.choose_next(purpose, usable, ""), viewmodel.ChooseNext(False, "", ""))
                self.assertEqual(viewmodel.choose_next(purpose, usable, "/dev/sdb"), viewmodel.ChooseNext(True, "/dev/sdb", ""))
        # Erasing a stick needs the person to confirm which one: never without a stick.
        self.assertEqual(viewmodel.choose_next("create", [], ""), viewmodel.ChooseNext(False, "", ""))

    def test_choose_texts(self):
        for purpose in ("create", "pair", "restore", "verify"):
            with self.subTest(purpose):
                self.assertTrue(all(viewmodel.choose_texts(purpose)))


class ResultTest(unittest.TestCase):
    def test_verify(self):
        v = viewmodel.result_view("verify", "success", "The backup differs in 2 files.", {
            "differences": [{"path": "Persistent/notes.txt", "change": "changed", "text": "Changed since the last update."},
                            {"path": "dotfiles/.bashrc", "change": "removed", "text": "Only in the backup."}],
            "checks": [{"name": "Bootloader", "ok": True, "text": "The backup can start."},
                       {"name": "System", "ok": False, "text": "The backup runs Tails 6.9; this Tails is 6.10."}],
        })
        self.assertEqual((v.title, v.text), ("Your backup Tails was checked", "The backup differs in 2 files."))
        self.assertEqual([(f.icon, f.title, f.subtitle) for f in v.differences], [
            ("document-edit-symbolic", "Persistent/notes.txt", "Changed since the last update."),
            ("list-remove-symbolic", "dotfiles/.bashrc", "Only in the backup."),
        ])
        self.assertEqual([f.icon for f in v.checks], ["object-select-symbolic", "dialog-warning-symbolic"])

    def test_verify_failed(self):
        # A check that found differences or a failed boot-time check ends "failed" (the agent's
        # verify succeeds only when the backup is identical and valid): the title says what it
        # found, not that the check went wrong.
        diff = {"path": "Persistent/photos/new.jpg", "change": "missing", "text": "Only on this Tails."}
        bad = {"name": "Boot loader", "ok": False, "text": "The backup cannot start a computer."}
        good = {"name": "Tails system", "ok": True, "text": "Intact."}
        for details, title, icons in [
            ({"differences": [diff], "checks": [good]}, "Your backup Tails is not up to date", ["list-add-symbolic"]),
            ({"differences": [], "checks": [good, bad]}, "Your backup Tails has a problem", []),
            ({"differences": [], "checks": [good]}, "Something went wrong", []),
            (None, "Something went wrong", []),
        ]:
            with self.subTest(title=title, details=details):
                v = viewmodel.result_view("verify", "failed", "text", details)
                self.assertEqual((v.title, v.icon), (title, "dialog-warning-symbolic"))
                self.assertEqual([f.icon for f in v.differences], icons)

    def test_results(self):
        for kind, result, title in [("create", "success", "Your backup Tails is ready"),
                                    ("pair", "success", "Your backup Tails is paired"),
                                    ("create", "failed", "Something went wrong"),
                                    ("restore", "cancelled", "Cancelled")]:
            with self.subTest(kind + " " + result):
                v = viewmodel.result_view(kind, result, "text", None)
                self.assertEqual(v.title, title)
                self.assertEqual((v.differences, v.checks), ([], []))


if __name__ == "__main__":
    unittest.main()


class BackupPageTest(unittest.TestCase):
    def test_switch(self):
        cases = [
            ("asks the passphrase", backup(), False, "Each update asks"),
            ("without the passphrase", backup(passphrase_free=True), True, "A key kept"),
            ("on at the next update", backup(passphrase_free_next=True), True, "Its next update asks"),
            ("an older agent: no key", {k: v for k, v in backup().items()}, False, "Each update asks"),
        ]
        for name, b, on, text in cases:
            with self.subTest(name):
                v = viewmodel.backup_page(status(backups=[b]), "u1", NOW)
                self.assertEqual(v.passphrase_free, on)
                self.assertTrue(v.passphrase_free_text.startswith(text), v.passphrase_free_text)
                self.assertEqual((v.title, v.age), ("SanDisk Cruzer (16 GB)", "Updated 3 days ago"))
                self.assertTrue(v.sensitive)

    def test_gone_or_busy(self):
        self.assertIsNone(viewmodel.backup_page(status(), "u2", NOW))
        self.assertIsNone(viewmodel.backup_page(status(backups=[]), "u1", NOW))
        self.assertIsNone(viewmodel.backup_page(status(is_backup=True), "u1", NOW))
        busy = viewmodel.backup_page(status(job={"id": "update-1", "kind": "update"}), "u1", NOW)
        self.assertFalse(busy.sensitive)

    def test_row_says_passphrase_free(self):
        rows = viewmodel.overview(status(backups=[backup(passphrase_free=True), backup(uuid="u2")]), NOW).backups
        self.assertEqual([r.passphrase_free for r in rows], [True, False])

    def test_job_titles(self):
        for kind, title, done in [
            ("forget", "Forgetting your backup Tails", "Your backup Tails is forgotten"),
            ("passphrase-free-on", "Turning on updates without the passphrase", "Updates without the passphrase are on"),
            ("passphrase-free-off", "Turning off updates without the passphrase", "Updates without the passphrase are off"),
        ]:
            with self.subTest(kind):
                self.assertEqual(viewmodel.job_title(kind), title)
                self.assertEqual(viewmodel.job_title(kind, waiting=True), "Plug in your backup Tails")
                self.assertEqual(viewmodel.result_view(kind, "success", "", {}).title, done)
