package smpp

import (
	"errors"
	"fmt"
	"io"
)

// FramingError means the byte stream can no longer be split into PDUs: the
// command_length is below the 16-octet header or above the reader's maximum.
// The connection must be closed.
type FramingError struct {
	Length   uint32 // the command_length read
	Sequence uint32 // the sequence_number of the header, for a generic_nack
	Max      int    // the reader's maximum
	Reason   string
}

func (e *FramingError) Error() string {
	return fmt.Sprintf("smpp: framing lost: command_length %d %s", e.Length, e.Reason)
}

// Unwrap gives ESME_RINVCMDLEN, the status a peer that can still write would
// answer with in a generic_nack before closing.
func (e *FramingError) Unwrap() error { return ESME_RINVCMDLEN }

// PDUError is a PDU that was framed correctly (its command_length was read
// and its octets consumed) but whose content is invalid. The stream is still
// in step: answer with Status (in a generic_nack, or in the request's
// response) and go on reading.
type PDUError struct {
	Header Header        // the header as read: command id and sequence number
	Field  string        // the field at fault, e.g. "source_addr", "command_id"
	Reason string        // why, in a few words
	Status CommandStatus // the command_status that answers it
}

func (e *PDUError) Error() string {
	what := e.Header.Command.String()
	if e.Field != "" {
		return fmt.Sprintf("smpp: %s (seq %d): %s: %s [%s]", what, e.Header.Sequence, e.Field, e.Reason, e.Status.Name())
	}
	return fmt.Sprintf("smpp: %s (seq %d): %s [%s]", what, e.Header.Sequence, e.Reason, e.Status.Name())
}

// Unwrap gives the status, so errors.Is(err, ESME_RINVCMDLEN) works.
func (e *PDUError) Unwrap() error { return e.Status }

// IsFatal reports whether err from a Reader means the connection cannot go
// on: framing lost, or the underlying read failed. A *PDUError is not fatal.
func IsFatal(err error) bool {
	if err == nil {
		return false
	}
	var pe *PDUError
	return !errors.As(err, &pe)
}

// ErrUnexpectedEOF is returned by a Reader when the stream ends inside a PDU.
var ErrUnexpectedEOF = io.ErrUnexpectedEOF
