package dlr

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func utc(y, mo, d, h, mi, s int) time.Time {
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Receipt
	}{
		{
			name: "appendix B layout, Kannel style",
			in:   "id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 stat:DELIVRD err:000 text:Hello World",
			want: Receipt{ID: "0123456789", Sub: 1, Dlvrd: 1, SubmitDate: utc(2006, 10, 19, 10, 18, 0), DoneDate: utc(2006, 10, 19, 10, 18, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Hello World"},
		},
		{
			name: "zero padded id, text none (Nexmo/Vonage)",
			in:   "id:0000000012345678 sub:001 dlvrd:001 submit date:1601010100 done date:1601010101 stat:DELIVRD err:000 text:none",
			want: Receipt{ID: "0000000012345678", Sub: 1, Dlvrd: 1, SubmitDate: utc(2016, 1, 1, 1, 0, 0), DoneDate: utc(2016, 1, 1, 1, 1, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "none"},
		},
		{
			name: "12-digit dates with seconds, 20-digit id",
			in:   "id:64567564356765435676 sub:001 dlvrd:001 submit date:190608165232 done date:190608165237 stat:DELIVRD err:000 text:Hello World",
			want: Receipt{ID: "64567564356765435676", Sub: 1, Dlvrd: 1, SubmitDate: utc(2019, 6, 8, 16, 52, 32), DoneDate: utc(2019, 6, 8, 16, 52, 37),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Hello World"},
		},
		{
			name: "capitalised Text: (SMPPSim, operators' manuals)",
			in:   "id:1234567 sub:001 dlvrd:001 submit date:0901011200 done date:0901011201 stat:DELIVRD err:000 Text:Your code is 123456",
			want: Receipt{ID: "1234567", Sub: 1, Dlvrd: 1, SubmitDate: utc(2009, 1, 1, 12, 0, 0), DoneDate: utc(2009, 1, 1, 12, 1, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Your code is 123456"},
		},
		{
			name: "no sub, no dlvrd, no text",
			in:   "id:40072910491427628 submit date:1007291049 done date:1007291049 stat:DELIVRD err:000",
			want: Receipt{ID: "40072910491427628", Sub: -1, Dlvrd: -1, SubmitDate: utc(2010, 7, 29, 10, 49, 0), DoneDate: utc(2010, 7, 29, 10, 49, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000"},
		},
		{
			name: "hex id, err with letters, empty text",
			in:   "id:2D6F0B6F sub:001 dlvrd:000 submit date:2301151200 done date:2301151205 stat:UNDELIV err:00B text:",
			want: Receipt{ID: "2D6F0B6F", Sub: 1, Dlvrd: 0, SubmitDate: utc(2023, 1, 15, 12, 0, 0), DoneDate: utc(2023, 1, 15, 12, 5, 0),
				Stat: "UNDELIV", State: Undeliverable, Err: "00B"},
		},
		{
			name: "UUID id (Jasmin)",
			in:   "id:16fd2706-8baf-433b-82eb-8c7fada847da sub:001 dlvrd:001 submit date:2405011230 done date:2405011231 stat:DELIVRD err:000 text:Code 4711",
			want: Receipt{ID: "16fd2706-8baf-433b-82eb-8c7fada847da", Sub: 1, Dlvrd: 1, SubmitDate: utc(2024, 5, 1, 12, 30, 0), DoneDate: utc(2024, 5, 1, 12, 31, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Code 4711"},
		},
		{
			name: "extra fields kept in order",
			in:   "id:123 sub:001 dlvrd:001 submit date:2405011230 done date:2405011231 stat:DELIVRD err:000 mcc:262 mnc:01 Price:0.05 text:hi",
			want: Receipt{ID: "123", Sub: 1, Dlvrd: 1, SubmitDate: utc(2024, 5, 1, 12, 30, 0), DoneDate: utc(2024, 5, 1, 12, 31, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "hi",
				Extra: []Field{{"mcc", "262"}, {"mnc", "01"}, {"Price", "0.05"}}},
		},
		{
			name: "hex err code, ENROUTE intermediate",
			in:   "id:778899 sub:001 dlvrd:000 submit date:2402290000 done date:2402290001 stat:ENROUTE err:0x0B text:",
			want: Receipt{ID: "778899", Sub: 1, Dlvrd: 0, SubmitDate: utc(2024, 2, 29, 0, 0, 0), DoneDate: utc(2024, 2, 29, 0, 1, 0),
				Stat: "ENROUTE", State: Enroute, Err: "0x0B"},
		},
		{
			name: "trailing NULs and CRLF after text",
			in:   "id:42 sub:001 dlvrd:001 submit date:2001011200 done date:2001011201 stat:DELIVRD err:000 text:Hello\x00\x00\r\n",
			want: Receipt{ID: "42", Sub: 1, Dlvrd: 1, SubmitDate: utc(2020, 1, 1, 12, 0, 0), DoneDate: utc(2020, 1, 1, 12, 1, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Hello"},
		},
		{
			name: "garbage words and trailing garbage without text",
			in:   "DLR id:42 foo bar stat:REJECTD err:001 ### ;;",
			want: Receipt{ID: "42", Sub: -1, Dlvrd: -1, Stat: "REJECTD", State: Rejected, Err: "001"},
		},
		{
			name: "text with colons, spaces and keys in it",
			in:   "id:9 sub:001 dlvrd:001 submit date:2112312359 done date:2201010000 stat:DELIVRD err:000 text:Code: 12 34 id:99 stat:X",
			want: Receipt{ID: "9", Sub: 1, Dlvrd: 1, SubmitDate: utc(2021, 12, 31, 23, 59, 0), DoneDate: utc(2022, 1, 1, 0, 0, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "Code: 12 34 id:99 stat:X"},
		},
		{
			name: "all upper-case keys",
			in:   "ID:987 SUB:001 DLVRD:001 SUBMIT DATE:2001011200 DONE DATE:2001011201 STAT:EXPIRED ERR:000 TEXT:ABC",
			want: Receipt{ID: "987", Sub: 1, Dlvrd: 1, SubmitDate: utc(2020, 1, 1, 12, 0, 0), DoneDate: utc(2020, 1, 1, 12, 1, 0),
				Stat: "EXPIRED", State: Expired, Err: "000", Text: "ABC"},
		},
		{
			name: "runs of spaces, tabs and newlines between fields",
			in:   "id:5   sub:002\tdlvrd:001\nsubmit  date:2001011200\r\ndone date:2001011201  stat:DELIVRD   err:000    text:  two parts ",
			want: Receipt{ID: "5", Sub: 2, Dlvrd: 1, SubmitDate: utc(2020, 1, 1, 12, 0, 0), DoneDate: utc(2020, 1, 1, 12, 1, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "two parts"},
		},
		{
			name: "space after the colon",
			in:   "id: 5551212 sub: 001 dlvrd: 001 submit date: 2001011200 done date: 2001011201 stat: DELIVRD err: 000 text: ok",
			want: Receipt{ID: "5551212", Sub: 1, Dlvrd: 1, SubmitDate: utc(2020, 1, 1, 12, 0, 0), DoneDate: utc(2020, 1, 1, 12, 1, 0),
				Stat: "DELIVRD", State: Delivered, Err: "000", Text: "ok"},
		},
		{
			name: "underscore date keys, 14-digit dates, spelled-out stat",
			in:   "id:77 sub:1 dlvrd:1 submit_date:20240501123045 done_date:20240501123050 stat:delivered err:0",
			want: Receipt{ID: "77", Sub: 1, Dlvrd: 1, SubmitDate: utc(2024, 5, 1, 12, 30, 45), DoneDate: utc(2024, 5, 1, 12, 30, 50),
				Stat: "delivered", State: Delivered, Err: "0"},
		},
		{
			name: "stat only, no id",
			in:   "stat:REJECTD err:001",
			want: Receipt{Sub: -1, Dlvrd: -1, Stat: "REJECTD", State: Rejected, Err: "001"},
		},
		{
			name: "bad and zero dates are absent",
			in:   "id:1 sub:001 dlvrd:000 submit date:1313131313 done date:0000000000 stat:EXPIRED err:000 text:x",
			want: Receipt{ID: "1", Sub: 1, Dlvrd: 0, Stat: "EXPIRED", State: Expired, Err: "000", Text: "x"},
		},
		{
			name: "impossible day, short date, unknown stat word",
			in:   "id:1 submit date:2302301200 done date:23023012 stat:FOOBAR",
			want: Receipt{ID: "1", Sub: -1, Dlvrd: -1, Stat: "FOOBAR", State: NoState},
		},
		{
			name: "key glued to leading garbage",
			in:   "\x00\x05id:77 stat:DELIVRD",
			want: Receipt{ID: "77", Sub: -1, Dlvrd: -1, Stat: "DELIVRD", State: Delivered},
		},
		{
			name: "repeated key: first wins, rest in Extra",
			in:   "id:1 id:2 stat:ACCEPTD stat:DELIVRD",
			want: Receipt{ID: "1", Sub: -1, Dlvrd: -1, Stat: "ACCEPTD", State: Accepted,
				Extra: []Field{{"id", "2"}, {"stat", "DELIVRD"}}},
		},
		{
			name: "non-numeric counts",
			in:   "id:1 sub:ABC dlvrd:1234567890 stat:UNDELIV err:",
			want: Receipt{ID: "1", Sub: -1, Dlvrd: -1, Stat: "UNDELIV", State: Undeliverable},
		},
		{
			name: "FAILED from an aggregator",
			in:   "id:abcdef0123 sub:001 dlvrd:000 submit date:2405011230 done date:2405011231 stat:FAILED err:034 text:",
			want: Receipt{ID: "abcdef0123", Sub: 1, Dlvrd: 0, SubmitDate: utc(2024, 5, 1, 12, 30, 0), DoneDate: utc(2024, 5, 1, 12, 31, 0),
				Stat: "FAILED", State: Undeliverable, Err: "034"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
			gotB, err := ParseBytes([]byte(tt.in))
			if err != nil || !reflect.DeepEqual(gotB, got) {
				t.Errorf("ParseBytes differs from Parse: %+v, %v", gotB, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"   \r\n",
		"Hello, your code is 123456",
		"id: stat:",
		"id:",
		"text:id:1 stat:DELIVRD",
		"sub:001 dlvrd:001 err:000 text:hi",
		"12:30 99:99",
	} {
		r, err := Parse(in)
		if err == nil {
			t.Errorf("Parse(%q) = %+v, want error", in, r)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Reason == "" || pe.Len != len(in) {
			t.Errorf("Parse(%q) error %#v, want *ParseError with reason", in, err)
		}
		if !errors.Is(err, ErrNotReceipt) {
			t.Errorf("Parse(%q) error %v does not wrap ErrNotReceipt", in, err)
		}
		if in != "" && strings.Contains(err.Error(), in) {
			t.Errorf("error %q contains the input", err)
		}
	}
}

func TestParseLocation(t *testing.T) {
	loc := time.FixedZone("UTC+3", 3*3600)
	r, err := Parse("id:1 submit date:2405011230 done date:240501123145 stat:DELIVRD", WithLocation(loc))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 5, 1, 9, 30, 0, 0, time.UTC); !r.SubmitDate.Equal(want) {
		t.Errorf("SubmitDate = %v, want %v", r.SubmitDate, want)
	}
	if want := time.Date(2024, 5, 1, 12, 31, 45, 0, loc); !r.DoneDate.Equal(want) {
		t.Errorf("DoneDate = %v, want %v", r.DoneDate, want)
	}
	if got := Format(r, WithLocation(loc)); !strings.Contains(got, "submit date:2405011230 done date:2405011231 ") {
		t.Errorf("Format in location: %q", got)
	}
	if got := Format(r); !strings.Contains(got, "submit date:2405010930 ") {
		t.Errorf("Format in UTC: %q", got)
	}
}

func TestLookup(t *testing.T) {
	r, err := Parse("id:1 stat:DELIVRD MCC:262 text:x")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := r.Lookup("mcc"); !ok || v != "262" {
		t.Errorf("Lookup(mcc) = %q, %v", v, ok)
	}
	if _, ok := r.Lookup("mnc"); ok {
		t.Error("Lookup(mnc) found")
	}
}

func TestParseBoundsExtra(t *testing.T) {
	var b strings.Builder
	b.WriteString("id:1 stat:DELIVRD")
	for range 1000 {
		b.WriteString(" k:v")
	}
	r, err := Parse(b.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Extra) != MaxExtra {
		t.Errorf("len(Extra) = %d, want %d", len(r.Extra), MaxExtra)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		r    Receipt
		opts []Option
		want string
	}{
		{
			name: "appendix B",
			r: Receipt{ID: "0123456789", Sub: 1, Dlvrd: 1, SubmitDate: utc(2006, 10, 19, 10, 18, 33), DoneDate: utc(2006, 10, 19, 10, 19, 0),
				State: Delivered, Err: "000", Text: "Hello World"},
			want: "id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191019 stat:DELIVRD err:000 text:Hello World",
		},
		{
			name: "seconds",
			r:    Receipt{ID: "1", Sub: 1, Dlvrd: 0, SubmitDate: utc(2024, 5, 1, 12, 30, 45), DoneDate: utc(2024, 5, 1, 12, 31, 5), State: Undeliverable, Err: "00B"},
			opts: []Option{WithSeconds()},
			want: "id:1 sub:001 dlvrd:000 submit date:240501123045 done date:240501123105 stat:UNDELIV err:00B text:",
		},
		{
			name: "absent values",
			r:    Receipt{ID: "x", Sub: -1, Dlvrd: -1},
			want: "id:x sub:000 dlvrd:000 submit date:0000000000 done date:0000000000 stat:UNKNOWN err:000 text:",
		},
		{
			name: "raw stat when no state, long text cut to 20 runes",
			r:    Receipt{ID: "7", Sub: 1234, Dlvrd: 2, Stat: "NOROUTE", Text: "Ihr Code lautet 123456, gültig 5 Min"},
			want: "id:7 sub:1234 dlvrd:002 submit date:0000000000 done date:0000000000 stat:NOROUTE err:000 text:Ihr Code lautet 1234",
		},
		{
			name: "state wins over raw stat",
			r:    Receipt{ID: "7", Sub: 1, Dlvrd: 1, Stat: "delivered", State: Delivered, Text: "äöüß€ äöüß€ äöüß€ äöüß€"},
			want: "id:7 sub:001 dlvrd:001 submit date:0000000000 done date:0000000000 stat:DELIVRD err:000 text:äöüß€ äöüß€ äöüß€ äö",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Format(tt.r, tt.opts...); got != tt.want {
				t.Errorf("Format\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	receipts := []Receipt{
		{ID: "0123456789", Sub: 1, Dlvrd: 1, SubmitDate: utc(2006, 10, 19, 10, 18, 0), DoneDate: utc(2006, 10, 19, 10, 19, 0), State: Delivered, Err: "000", Text: "Hello World"},
		{ID: "2d6f0b6f", Sub: 1, Dlvrd: 0, SubmitDate: utc(2024, 2, 29, 23, 59, 0), DoneDate: utc(2024, 3, 1, 0, 0, 0), State: Undeliverable, Err: "00B", Text: "Code: 1 2 3"},
		{ID: "16fd2706-8baf-433b-82eb-8c7fada847da", Sub: 3, Dlvrd: 2, State: Expired, Err: "0x0B"},
		{ID: "9", Sub: 0, Dlvrd: 0, State: Rejected, Err: "000", Text: "text:stat:DELIVRD"},
		{ID: "1", Sub: 1, Dlvrd: 1, State: Accepted, Err: "000", Text: "äöüß€"},
	}
	for _, seconds := range []bool{false, true} {
		for _, want := range receipts {
			var opts []Option
			if seconds {
				opts = append(opts, WithSeconds())
			}
			if seconds && !want.SubmitDate.IsZero() {
				want.SubmitDate = want.SubmitDate.Add(59 * time.Second)
			}
			want.Stat = want.State.Stat()
			text := Format(want, opts...)
			got, err := Parse(text)
			if err != nil {
				t.Fatalf("Parse(Format(%+v)) = %v", want, err)
			}
			if !want.SubmitDate.IsZero() && !seconds {
				want.SubmitDate = want.SubmitDate.Truncate(time.Minute)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip of %q\n got %+v\nwant %+v", text, got, want)
			}
			if again := Format(got, opts...); again != text {
				t.Errorf("Format(Parse(%q)) = %q", text, again)
			}
		}
	}
}

func BenchmarkParse(b *testing.B) {
	in := "id:2d6f0b6f sub:001 dlvrd:001 submit date:2405011230 done date:240501123145 stat:DELIVRD err:000 text:Your code is 123456"
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r, err := Parse(in)
		if err != nil || r.State != Delivered {
			b.Fatal(r, err)
		}
	}
}

func BenchmarkParseBytes(b *testing.B) {
	in := []byte("id:2d6f0b6f sub:001 dlvrd:001 submit date:2405011230 done date:240501123145 stat:DELIVRD err:000 text:Your code is 123456")
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := ParseBytes(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	r := Receipt{ID: "2d6f0b6f", Sub: 1, Dlvrd: 1, SubmitDate: utc(2024, 5, 1, 12, 30, 0), DoneDate: utc(2024, 5, 1, 12, 31, 45), State: Delivered, Err: "000", Text: "Your code is 123456"}
	b.ReportAllocs()
	for b.Loop() {
		_ = Format(r)
	}
}
