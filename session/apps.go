package session

// AppQuestion asks the person what to do about an application that holds open files of the
// Persistent Storage that an update copies or a restore replaces.
type AppQuestion struct {
	App     string // "Thunderbird"
	Feature string // the name of its Persistent Storage feature
	// Text is what the person is told, when the flow words it (restore); the update leaves the
	// words to its observer (a notification, a terminal).
	Text string
	// Closable: the application can be asked to close (AppAgain closes it). Otherwise it runs as
	// root (the package manager): it is never signalled, the person waits and AppAgain looks again.
	Closable bool
	// StillRunning: it was asked to close and did not (it may be asking to save something).
	StillRunning bool
}

// AppAnswer is the person's answer to an AppQuestion.
type AppAnswer int

const (
	AppCancel AppAnswer = iota // cancel the update or the restore
	AppAgain                   // close it (Closable), or look again whether it has finished
	AppLeave                   // leave its data as it is: an update skips it this time (the backup keeps its previous copy), a restore does not replace it
)
