package dlr

import (
	"strconv"
	"strings"
)

// State is the state of a short message as SMPP 3.4 section 5.2.28 numbers
// it in the message_state field and TLV. The numeric values are the wire
// values, so a message_state octet converts with State(b).
//
// SMPP 3.4 defines the values 1 to 8. SMPP 5.0 adds SCHEDULED (0) and
// SKIPPED (9). This package gives 0 the meaning "no state known" (NoState),
// which is what a 3.4 peer can mean by it and which treats a 5.0 SCHEDULED
// correctly as not final; Skipped is kept as an extension.
type State uint8

// The message states. The comments quote the meaning from SMPP 3.4
// section 5.2.28 (and 5.0 for the extensions).
const (
	// NoState is the zero State: no stat field, or a stat word this
	// package does not recognise. (SMPP 5.0 calls the value 0
	// SCHEDULED; 3.4 SMSCs report scheduled messages as ENROUTE.)
	NoState State = 0
	// Enroute: the message is in enroute state (in the SMSC, in retry
	// or dispatched to the network). Not final.
	Enroute State = 1
	// Delivered: the message is delivered to its destination.
	Delivered State = 2
	// Expired: the message validity period has expired.
	Expired State = 3
	// Deleted: the message has been deleted (cancelled).
	Deleted State = 4
	// Undeliverable: the message is undeliverable.
	Undeliverable State = 5
	// Accepted: the message is in accepted state (SMPP 3.4: manually read
	// on behalf of the subscriber by customer service). Real SMSCs send
	// ACCEPTD as an intermediate "accepted by the SMSC or network";
	// see State.Final.
	Accepted State = 6
	// Unknown: the message is in invalid state.
	Unknown State = 7
	// Rejected: the message is in a rejected state.
	Rejected State = 8
	// Skipped is an SMPP 5.0 extension: the message was accepted but
	// not transmitted or broadcast on the network. Not part of 3.4.
	Skipped State = 9
)

var stateNames = [...]string{
	NoState:       "NONE",
	Enroute:       "ENROUTE",
	Delivered:     "DELIVERED",
	Expired:       "EXPIRED",
	Deleted:       "DELETED",
	Undeliverable: "UNDELIVERABLE",
	Accepted:      "ACCEPTED",
	Unknown:       "UNKNOWN",
	Rejected:      "REJECTED",
	Skipped:       "SKIPPED",
}

// statWords are the 7-character stat words of SMPP 3.4 Appendix B,
// Table B-2, plus ENROUTE (sent by real SMSCs for intermediate receipts
// though Table B-2 leaves it out) and SKIPPED (5.0).
var statWords = [...]string{
	NoState:       "",
	Enroute:       "ENROUTE",
	Delivered:     "DELIVRD",
	Expired:       "EXPIRED",
	Deleted:       "DELETED",
	Undeliverable: "UNDELIV",
	Accepted:      "ACCEPTD",
	Unknown:       "UNKNOWN",
	Rejected:      "REJECTD",
	Skipped:       "SKIPPED",
}

// String returns the SMPP name of the state: "DELIVERED", "UNDELIVERABLE",
// and so on; "NONE" for NoState and "State(N)" for values outside 0 to 9.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Stat returns the 7-character receipt stat word for the state: "DELIVRD",
// "UNDELIV", "ACCEPTD", "REJECTD", "EXPIRED", "DELETED", "UNKNOWN",
// "ENROUTE", or "SKIPPED". It returns "" for NoState and for values
// outside 0 to 9.
func (s State) Stat() string {
	if int(s) < len(statWords) {
		return statWords[s]
	}
	return ""
}

// Final reports whether the state ends the message's life, so that no
// later receipt is expected for it: Delivered, Expired, Deleted,
// Undeliverable, Unknown, Rejected and Skipped.
//
// Enroute and NoState are not final. Accepted is not final either, unlike
// in the specification: SMPP 3.4 means "read by customer service", but
// SMSCs commonly send ACCEPTD as an intermediate acknowledgement that is
// followed by DELIVRD or UNDELIV (Kannel, for one, counts it as buffered).
func (s State) Final() bool {
	switch s {
	case Delivered, Expired, Deleted, Undeliverable, Unknown, Rejected, Skipped:
		return true
	}
	return false
}

// statAliases maps upper-case stat words as real SMSCs send them to states.
var statAliases = map[string]State{
	// Appendix B, Table B-2, and ENROUTE.
	"DELIVRD": Delivered,
	"EXPIRED": Expired,
	"DELETED": Deleted,
	"UNDELIV": Undeliverable,
	"ACCEPTD": Accepted,
	"UNKNOWN": Unknown,
	"REJECTD": Rejected,
	"ENROUTE": Enroute,
	// The section 5.2.28 names, spelled out.
	"DELIVERED":     Delivered,
	"UNDELIVERABLE": Undeliverable,
	"ACCEPTED":      Accepted,
	"REJECTED":      Rejected,
	// Misspellings and near variants seen from SMSCs and aggregators.
	"DELIVERD":    Delivered,
	"DELIVRED":    Delivered,
	"EXPIRD":      Expired,
	"DELETD":      Deleted,
	"UNDELIVERED": Undeliverable,
	"UNDELIVRD":   Undeliverable,
	"UNDELIVD":    Undeliverable,
	"REJECT":      Rejected,
	"EN_ROUTE":    Enroute,
	// Generic failure words: a final failure, read as Undeliverable.
	"FAILED": Undeliverable,
	"FAILD":  Undeliverable,
	// Intermediate words (Kannel counts these as buffered).
	"BUFFRED":   Enroute,
	"BUFFERD":   Enroute,
	"BUFFERED":  Enroute,
	"SCHEDULED": Enroute, // what a 3.4 SMSC reports for 5.0 SCHEDULED
	"ACKED":     Accepted,
	// SMPP 5.0.
	"SKIPPED": Skipped,
}

// ParseStat maps a receipt stat word to a State. It ignores case and
// surrounding white space and accepts, besides the seven words of
// Appendix B and ENROUTE, the spelled-out names (DELIVERED, UNDELIVERABLE,
// ACCEPTED, REJECTED), common misspellings (DELIVERD, EXPIRD, DELETD,
// UNDELIVERED, ...), FAILED and FAILD as Undeliverable, BUFFRED, BUFFERD,
// BUFFERED and SCHEDULED as Enroute, ACKED as Accepted, and SKIPPED.
// Numbers are not accepted: SMSCs that put a number in stat disagree on
// what it means. For anything else it returns NoState and false.
func ParseStat(word string) (State, bool) {
	word = strings.TrimSpace(word)
	if len(word) == 0 || len(word) > 16 {
		return NoState, false
	}
	var buf [16]byte
	for i := 0; i < len(word); i++ {
		c := word[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
	}
	st, ok := statAliases[string(buf[:len(word)])]
	return st, ok
}
