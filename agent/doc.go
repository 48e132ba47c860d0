// Package agent is the session side of tails-backup: it runs as the desktop user, watches for
// paired backup sticks, reminds the user, asks passphrases and runs the root helper.
//
// Building blocks, each a package of its own with an interface and, in a test-support package,
// a fake for tests:
//
//   - clock: Clock (RealClock, clocktest.FakeClock) and WaitUntil: time, and sleeping until a
//     wall-clock time.
//   - pairing: Store and State, the pairing store, one JSON file written atomically.
//   - pinentry: PassphraseAsker (Pinentry, pinentrytest.FakeAsker) and AskWithRetries:
//     passphrases through pinentry.
//   - quiesce: Quiescer (ProcQuiescer, quiescetest.FakeQuiescer): applications to close before
//     copying.
//   - inhibit: Inhibitor (LogindInhibitor, inhibittest.FakeInhibitor): no sleep or shutdown
//     during an update.
//   - wire: HelperRunner (HelperClient, wiretest.FakeHelper): the root helper and its
//     JSON-lines protocol.
//
// The pure reminder policy (session.DecideReminder) and its texts are in session, so that the
// commands and the app say what the agent does.
//
// No passphrase is ever logged or stored: only PassphraseAsker implementations and the try
// function given to AskWithRetries see one.
package agent
