"""The bidirectional controls of the app's translated texts (tailsbackup.i18n.bidi)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tailsbackup import i18n  # noqa: E402

RLM, FSI, PDI = "\u200f", "\u2068", "\u2069"


class BidiTest(unittest.TestCase):
    def test_bidi(self):
        for text, want in [
            # An Arabic sentence that starts with a Latin word or a field starts right to left.
            ("Tails الاحتياطي جاهز", RLM + "Tails الاحتياطي جاهز"),
            ("{name} موصولة.", RLM + "{name} موصولة."),
            # Each paragraph on its own.
            ("عربي\nTails عربي", "عربي\n" + RLM + "Tails عربي"),
            # An Arabic sentence whose first letter outside isolates is Arabic is left alone.
            (FSI + "Thunderbird" + PDI + " قيد التشغيل", FSI + "Thunderbird" + PDI + " قيد التشغيل"),
            ("اكتمل 42%.", "اكتمل 42%."),
            # An Arabic text with only isolated values outside: right to left too.
            (FSI + "SanDisk" + PDI + " " + FSI + "غ.ب" + PDI, RLM + FSI + "SanDisk" + PDI + " " + FSI + "غ.ب" + PDI),
            # Already right to left, or not a right-to-left text at all.
            (RLM + "Tails الاحتياطي", RLM + "Tails الاحتياطي"),
            ("Your backup Tails is ready", "Your backup Tails is ready"),
            ("Prêt : 3 fichiers", "Prêt : 3 fichiers"),
            ("", ""),
        ]:
            with self.subTest(text=text):
                self.assertEqual(i18n.bidi(text), want)


if __name__ == "__main__":
    unittest.main()
