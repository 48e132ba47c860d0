package dbusapi

// The sentences this package says itself (the Backend says all the others).
const (
	textFailed         = "The backup agent failed: %v. Try again; if it fails again, restart Tails."
	textUnknownPurpose = "There is no list of sticks for %q: ask for create, pair, restore or verify."
	textNoQuestion     = "That question is no longer asked: it was answered, or its job ended."
	textBadChoice      = "%q is not one of the answers to that question: choose one of those it offers."
	textPeriod         = "A reminder period is 1 to 90 days: choose a period in that range."
	textNoBackup       = "No backup was named: say which paired backup, by its uuid in the status."
)
