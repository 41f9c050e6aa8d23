package smpp

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fixture is one record of a fixtures/**/*.hex file.
type fixture struct {
	file, desc, source, deviation, expect string
	line                                  int
	raw, spec                             []byte
}

func loadFixtures(t testing.TB) []fixture {
	t.Helper()
	files, err := filepath.Glob("../fixtures/*/*.hex")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures found: %v", err)
	}
	var out []fixture
	for _, fn := range files {
		f, err := os.Open(fn)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var cur fixture
		n := 0
		flush := func() {
			if cur.raw != nil {
				out = append(out, cur)
			}
			cur = fixture{}
		}
		for sc.Scan() {
			n++
			line := strings.TrimSpace(sc.Text())
			switch {
			case line == "":
				flush()
			case strings.HasPrefix(line, "# source:"):
				cur.source = strings.TrimSpace(strings.TrimPrefix(line, "# source:"))
			case strings.HasPrefix(line, "# deviation:"):
				cur.deviation = strings.TrimSpace(strings.TrimPrefix(line, "# deviation:"))
			case strings.HasPrefix(line, "#"):
				if cur.desc == "" {
					cur.desc = strings.TrimSpace(strings.TrimPrefix(line, "#"))
				}
			case strings.HasPrefix(line, "expect:"):
				cur.expect = strings.TrimSpace(strings.TrimPrefix(line, "expect:"))
			case strings.HasPrefix(line, "spec:"):
				b, err := hex.DecodeString(strings.TrimSpace(strings.TrimPrefix(line, "spec:")))
				if err != nil {
					t.Fatalf("%s:%d: %v", fn, n, err)
				}
				cur.spec = b
			default:
				b, err := hex.DecodeString(line)
				if err != nil {
					t.Fatalf("%s:%d: %v", fn, n, err)
				}
				if cur.raw != nil {
					t.Fatalf("%s:%d: two hex lines in one record", fn, n)
				}
				cur.file, cur.line, cur.raw = filepath.Base(fn), n, b
			}
		}
		flush()
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestFixtures(t *testing.T) {
	fx := loadFixtures(t)
	seen := map[CommandID]bool{}
	for _, f := range fx {
		name := f.file + ":" + strconv.Itoa(f.line)
		t.Run(name, func(t *testing.T) {
			if f.expect != "" {
				checkMalformed(t, f)
				return
			}
			p, err := Decode(f.raw)
			if err != nil {
				t.Fatalf("%s\ndecode: %v", f.desc, err)
			}
			seen[p.CommandID()] = true
			got, err := Marshal(p)
			if err != nil {
				t.Fatalf("%s\nencode: %v", f.desc, err)
			}
			want := f.raw
			if f.spec != nil {
				if f.deviation == "" {
					t.Fatalf("%s: spec: line without a deviation: line", f.desc)
				}
				want = f.spec
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s\nre-encoded %x\nwant       %x", f.desc, got, want)
			}
			// Reading through a Reader gives the same PDU.
			r := NewReader(bytes.NewReader(f.raw))
			p2, err := r.ReadPDU()
			if err != nil {
				t.Fatalf("reader: %v", err)
			}
			if got2, _ := Marshal(p2); !bytes.Equal(got2, got) {
				t.Fatalf("reader decoded differently: %x", got2)
			}
		})
	}
	// The golden set covers every PDU of SMPP 3.4.
	for c := range commandNames {
		if !seen[c] {
			t.Errorf("no golden fixture decodes to %s", c)
		}
	}
}

func checkMalformed(t *testing.T, f fixture) {
	r := NewReader(bytes.NewReader(f.raw))
	_, err := r.ReadPDU()
	if err == nil {
		t.Fatalf("%s: decoded without error", f.desc)
	}
	if f.expect == "fatal" {
		if !IsFatal(err) {
			t.Fatalf("%s: got non-fatal %v", f.desc, err)
		}
		var fe *FramingError
		if !errors.As(err, &fe) {
			t.Fatalf("%s: got %T %v, want *FramingError", f.desc, err, err)
		}
		return
	}
	parts := strings.Fields(f.expect)
	if len(parts) != 3 || parts[0] != "error" {
		t.Fatalf("bad expect line %q", f.expect)
	}
	var pe *PDUError
	if !errors.As(err, &pe) {
		t.Fatalf("%s: got %T %v, want *PDUError", f.desc, err, err)
	}
	if IsFatal(err) {
		t.Fatalf("%s: PDU error reported fatal", f.desc)
	}
	st, ok := StatusByName(parts[2])
	if !ok {
		t.Fatalf("unknown status %s", parts[2])
	}
	if pe.Status != st || !errors.Is(err, st) {
		t.Errorf("%s: status %s, want %s (%v)", f.desc, pe.Status.Name(), parts[2], err)
	}
	if parts[1] != "-" && pe.Field != parts[1] {
		t.Errorf("%s: field %q, want %q (%v)", f.desc, pe.Field, parts[1], err)
	}
	h, _ := ParseHeader(f.raw)
	if pe.Header.Sequence != h.Sequence {
		t.Errorf("error lost the sequence number: %d", pe.Header.Sequence)
	}
	// The stream is still in step: a following enquire_link reads fine.
	next := append(append([]byte{}, f.raw...), 0, 0, 0, 16, 0, 0, 0, 0x15, 0, 0, 0, 0, 0, 0, 0, 99)
	r = NewReader(bytes.NewReader(next))
	if _, err := r.ReadPDU(); err == nil {
		t.Fatal("second read of a malformed PDU succeeded")
	}
	p, err := r.ReadPDU()
	if err != nil || p.CommandID() != EnquireLinkID || p.Head().Sequence != 99 {
		t.Fatalf("after a PDU error the next PDU reads as %v, %v", p, err)
	}
}
