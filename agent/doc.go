// Package agent is the session side of tails-backup: it runs as the desktop user, watches for
// paired backup sticks, reminds the user, asks passphrases and runs the root helper.
//
// Building blocks, each a small unit with an interface and a fake for tests:
//
//   - Clock (RealClock, FakeClock) and WaitUntil: time, and sleeping until a wall-clock time.
//   - Store and State: the pairing store, one JSON file written atomically.
//   - DecideReminder: the pure reminder policy.
//   - PassphraseAsker (Pinentry, FakeAsker) and AskWithRetries: passphrases through pinentry.
//   - Quiescer (ProcQuiescer, FakeQuiescer): applications to close before copying.
//   - Inhibitor (LogindInhibitor, FakeInhibitor): no sleep or shutdown during an update.
//   - HelperRunner (HelperClient, FakeHelper): the root helper and its JSON-lines protocol.
//
// No passphrase is ever logged or stored: only PassphraseAsker implementations and the try
// function given to AskWithRetries see one.
package agent
