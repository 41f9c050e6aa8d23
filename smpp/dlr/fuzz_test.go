package dlr

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"id:0123456789 sub:001 dlvrd:001 submit date:0610191018 done date:0610191018 stat:DELIVRD err:000 text:Hello World",
	"id:64567564356765435676 sub:001 dlvrd:001 submit date:190608165232 done date:190608165237 stat:DELIVRD err:000 text:Hello World",
	"id:1234567 sub:001 dlvrd:001 submit date:0901011200 done date:0901011201 stat:DELIVRD err:000 Text:Your code is 123456",
	"id:40072910491427628 submit date:1007291049 done date:1007291049 stat:DELIVRD err:000",
	"id:2D6F0B6F sub:001 dlvrd:000 submit date:2301151200 done date:2301151205 stat:UNDELIV err:00B text:",
	"id:16fd2706-8baf-433b-82eb-8c7fada847da sub:001 dlvrd:001 submit date:2405011230 done date:2405011231 stat:DELIVRD err:000 text:Code 4711",
	"id:123 stat:DELIVRD err:000 mcc:262 mnc:01 text:hi",
	"id:42 sub:001 dlvrd:001 stat:DELIVRD err:000 text:Hello\x00\x00\r\n",
	"DLR id:42 foo bar stat:REJECTD err:001 ### ;;",
	"id:9 stat:DELIVRD err:000 text:Code: 12 34 id:99 stat:X",
	"ID:987 SUB:001 DLVRD:001 SUBMIT DATE:2001011200 DONE DATE:2001011201 STAT:EXPIRED ERR:000 TEXT:ABC",
	"id: 5551212 sub: 001 dlvrd: 001 submit date: 2001011200 done date: 2001011201 stat: DELIVRD err: 000 text: ok",
	"id:77 submit_date:20240501123045 done_date:20240501123050 stat:delivered err:0",
	"stat:REJECTD err:001",
	"id:1 submit date:1313131313 done date:0000000000 stat:EXPIRED",
	"\x00\x05id:77 stat:DELIVRD",
	"id:1 id:2 stat:ACCEPTD stat:DELIVRD",
	"id: stat:",
	"submit date:",
	"submit    date:done date:",
	"text:",
	"",
	"id:\xff\xfe stat:\xc3 text:\xe2\x82",
	"id:0x1F stat:ENROUTE",
	"id:" + strings.Repeat("f", 64) + " stat:UNKNOWN",
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if r.ID != "" || r.Stat != "" || r.Extra != nil {
				t.Fatalf("error %v with non-empty receipt %+v", err, r)
			}
			return
		}
		if r.ID == "" && r.Stat == "" {
			t.Fatalf("no id and no stat but no error: %+v", r)
		}
		if r.Text != trimText(r.Text) {
			t.Fatalf("text %q not trimmed", r.Text)
		}
		if len(r.Extra) > MaxExtra {
			t.Fatalf("%d extra fields", len(r.Extra))
		}
		if st, ok := ParseStat(r.Stat); st != r.State || (ok != (r.State != NoState)) {
			t.Fatalf("State %v does not match Stat %q", r.State, r.Stat)
		}
		if r.Sub < -1 || r.Dlvrd < -1 {
			t.Fatalf("negative counts %d %d", r.Sub, r.Dlvrd)
		}

		text := Format(r, WithSeconds())
		r2, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(Format(r)) = %v; r %+v, text %q", err, r, text)
		}
		if r2.ID != r.ID {
			t.Fatalf("ID %q -> %q (text %q)", r.ID, r2.ID, text)
		}
		if r.State != NoState && r2.State != r.State {
			t.Fatalf("State %v -> %v", r.State, r2.State)
		}
		if r.State == NoState && r.Stat != "" && r2.Stat != r.Stat {
			t.Fatalf("Stat %q -> %q", r.Stat, r2.Stat)
		}
		if r.Sub >= 0 && r2.Sub != r.Sub || r.Dlvrd >= 0 && r2.Dlvrd != r.Dlvrd {
			t.Fatalf("counts %d/%d -> %d/%d", r.Sub, r.Dlvrd, r2.Sub, r2.Dlvrd)
		}
		if y := r.SubmitDate.Year(); !r.SubmitDate.IsZero() && y >= 2000 && y < 2100 && !r2.SubmitDate.Equal(r.SubmitDate) {
			t.Fatalf("SubmitDate %v -> %v", r.SubmitDate, r2.SubmitDate)
		}
		if y := r.DoneDate.Year(); !r.DoneDate.IsZero() && y >= 2000 && y < 2100 && !r2.DoneDate.Equal(r.DoneDate) {
			t.Fatalf("DoneDate %v -> %v", r.DoneDate, r2.DoneDate)
		}
		if r.Err != "" && r2.Err != r.Err {
			t.Fatalf("Err %q -> %q", r.Err, r2.Err)
		}
		if !strings.HasPrefix(r.Text, r2.Text) || utf8.RuneCountInString(r2.Text) > MaxText {
			t.Fatalf("Text %q -> %q", r.Text, r2.Text)
		}

		// The id helpers must hold on whatever id a receipt carries.
		c := Canonical(r.ID)
		forms := IDForms(r.ID)
		if strings.TrimSpace(r.ID) == "" {
			if forms != nil || SameID(r.ID, r.ID) {
				t.Fatalf("empty id %q: forms %q", r.ID, forms)
			}
			return
		}
		if len(forms) == 0 || forms[0] != c {
			t.Fatalf("IDForms(%q) = %q, Canonical %q", r.ID, forms, c)
		}
		if !SameID(r.ID, r.ID) {
			t.Fatalf("SameID(%q, itself) false", r.ID)
		}
		if isDec(c) && len(c) <= MaxIDLen && len(strings.TrimSpace(r.ID)) <= MaxIDLen && !SameID(r.ID, c) {
			t.Fatalf("SameID(%q, Canonical %q) false", r.ID, c)
		}
		if Canonical(c) != c {
			t.Fatalf("Canonical(%q) = %q, Canonical of that = %q", r.ID, c, Canonical(c))
		}
		for i, form := range forms[1:] {
			if !isDec(form) || slices.Contains(forms[:i+1], form) {
				t.Fatalf("IDForms(%q) = %q: extra forms must be distinct numbers", r.ID, forms)
			}
		}
	})
}
