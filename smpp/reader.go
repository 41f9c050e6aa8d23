package smpp

import (
	"bufio"
	"encoding/binary"
	"io"
	"strconv"
)

// Reader reads PDUs from a byte stream. It reads one command_length worth of
// octets at a time into a buffer it reuses, so a malformed body never puts
// the stream out of step: such a PDU gives a *PDUError and the next call
// reads the next PDU. Only a command_length outside [16, MaxLength] (a
// *FramingError) or a failed read ends the stream.
type Reader struct {
	br  *bufio.Reader
	hdr [HeaderLen]byte
	buf []byte

	// MaxLength is the largest command_length accepted. Zero means
	// DefaultMaxPDULen (64 KiB).
	MaxLength int

	// Reuse makes ReadPDU return the same struct for every request of a
	// command id, overwriting it on the next read of that command, so that
	// steady traffic decodes without garbage. The caller must be done with a
	// request (or copy what it keeps of its byte slices; its strings may be
	// kept) before reading the next one of its kind. Responses are always
	// new structs: they are handed to the goroutine that waits for them.
	Reuse bool
	cache map[CommandID]PDU
}

// NewReader returns a Reader on r, buffered unless r is a *bufio.Reader
// already.
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 16*1024)
	}
	return &Reader{br: br}
}

func (r *Reader) max() int {
	if r.MaxLength > 0 {
		return r.MaxLength
	}
	return DefaultMaxPDULen
}

// Buffered reports whether the next PDU is wholly in the buffer, so that
// reading it does not wait for the stream.
func (r *Reader) Buffered() bool {
	n := r.br.Buffered()
	if n < HeaderLen {
		return false
	}
	b, _ := r.br.Peek(4)
	return int64(binary.BigEndian.Uint32(b)) <= int64(n)
}

// ReadRaw reads one PDU and returns its header and body. The body aliases
// the Reader's buffer and is valid until the next read.
func (r *Reader) ReadRaw() (Header, []byte, error) {
	if _, err := io.ReadFull(r.br, r.hdr[:]); err != nil {
		return Header{}, nil, err // io.EOF between PDUs, io.ErrUnexpectedEOF inside one
	}
	h := Header{
		Length:   binary.BigEndian.Uint32(r.hdr[0:]),
		Command:  CommandID(binary.BigEndian.Uint32(r.hdr[4:])),
		Status:   CommandStatus(binary.BigEndian.Uint32(r.hdr[8:])),
		Sequence: binary.BigEndian.Uint32(r.hdr[12:]),
	}
	if h.Length < HeaderLen {
		return h, nil, &FramingError{Length: h.Length, Sequence: h.Sequence, Max: r.max(), Reason: "is below the 16-octet header"}
	}
	if int64(h.Length) > int64(r.max()) {
		return h, nil, &FramingError{Length: h.Length, Sequence: h.Sequence, Max: r.max(), Reason: "is above the maximum PDU size " + strconv.Itoa(r.max())}
	}
	n := int(h.Length) - HeaderLen
	if cap(r.buf) < n {
		r.buf = make([]byte, n, max(n, 256))
	}
	body := r.buf[:n]
	if _, err := io.ReadFull(r.br, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	return h, body, nil
}

// ReadPDU reads and decodes one PDU; a command_id SMPP 3.4 does not
// define gives an *UnknownPDU. A *PDUError means the PDU was skipped
// whole and the stream is still usable: answer it (its Header has the
// sequence number) and read on. Any other error ends the stream (see
// IsFatal).
func (r *Reader) ReadPDU() (PDU, error) {
	h, body, err := r.ReadRaw()
	if err != nil {
		return nil, err
	}
	var p PDU
	if r.Reuse && !h.Command.IsResponse() {
		if p = r.cache[h.Command]; p == nil {
			if p = New(h.Command); p != nil {
				if r.cache == nil {
					r.cache = make(map[CommandID]PDU)
				}
				r.cache[h.Command] = p
			}
		}
	} else {
		p = New(h.Command)
	}
	if p == nil {
		if h.Command == 0 {
			return nil, &PDUError{Header: h, Field: "command_id", Reason: "command_id 0", Status: ESME_RINVCMDID}
		}
		p = &UnknownPDU{}
	}
	if err := DecodeBody(p, h, body); err != nil {
		return nil, err
	}
	return p, nil
}
