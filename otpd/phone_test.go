package otpd

import (
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

func TestParsePhone(t *testing.T) {
	tests := []struct {
		raw, region string
		strict      bool
		e164, want  string // want: the region, or a part of the error
	}{
		{"+4915112345678", "", true, "+4915112345678", "DE"},
		{" +49 151 1234 5678 ", "", true, "+4915112345678", "DE"},
		{"0049 151 12345678", "", true, "+4915112345678", "DE"},
		{"015112345678", "DE", true, "+4915112345678", "DE"},
		{"015112345678", "", true, "", "international format"},
		{"+12015550123", "", true, "+12015550123", "US"},
		{"+16135550123", "", true, "+16135550123", "CA"},
		{"+493012345678", "", true, "", "fixed line"},
		{"+15550000001", "", true, "", "not a valid number"},
		{"+15550000001", "", false, "+15550000001", ""}, // fictional: the embedded simulator's magic numbers
		{"+1201555", "", false, "", "impossible length"},
		{"0012015550123", "DE", true, "+12015550123", "US"},     // DE's international prefix
		{"01112015550123", "US", true, "+12015550123", "US"},    // and the US's
		{"0012015550123", "US", true, "", "not a valid number"}, // 00 is not the US's
		{"00 800 1234 5678", "", true, "+80012345678", "001"},   // no region: 00 is international
		{"00", "", true, "", "not a number"},
		{"0012", "", true, "", "not a number"},
		{"+999123456", "", true, "", "unknown country code"},
		{"call me", "", true, "", "letters"},
		{"+49abc", "", true, "", "letters"},
		{"+49151ABCDEFGH", "", true, "", "letters"}, // not a keypad's digits
		{"+49 151 12345678 ext. 12", "", true, "", "letters"},
		{"+4915112345678;ext=12", "", true, "", "extension"},
		{"+4915112345678#12", "", true, "", "extension"},
		{"＋４９１５１１２３４５６７８", "", true, "+4915112345678", "DE"},             // full-width: read as digits
		{"+٤٩١٥١١٢٣٤٥٦٧٨", "", true, "+4915112345678", "DE"},             // Arabic-Indic digits too
		{"+49\u00a0151\u00a012345678", "", true, "+4915112345678", "DE"}, // no-break spaces
		{"+49151\u200b12345678", "", true, "", "characters"},             // a zero-width space is not a separator
		{"+499001234567", "", true, "+499001234567", "DE"},               // parsed; the service refuses its type
		{"", "", true, "", "required"},
		{"+" + strings.Repeat("1", 40), "", true, "", "too long"},
	}
	for _, tt := range tests {
		p, err := parsePhone(tt.raw, tt.region, tt.strict)
		if tt.e164 == "" {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parsePhone(%q, %q, %v) = %+v, %v; want an error saying %q", tt.raw, tt.region, tt.strict, p, err, tt.want)
			}
			continue
		}
		if err != nil || p.E164 != tt.e164 || p.Region != tt.want {
			t.Errorf("parsePhone(%q, %q, %v) = %+v, %v; want %s in %q", tt.raw, tt.region, tt.strict, p, err, tt.e164, tt.want)
		}
	}
}

// TestStrictPhoneIsTheLibrarysVerdict: the strict check asks only for the
// number's type; it must refuse exactly what IsValidNumber refuses, and
// fixed lines, for the library's example numbers of every region and type
// and for those numbers a digit longer or shorter (mostly invalid ones).
func TestStrictPhoneIsTheLibrarysVerdict(t *testing.T) {
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	n, accepted := 0, 0
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range types {
			ex := phonenumbers.GetExampleNumberForType(region, typ)
			if ex == nil {
				continue
			}
			e164 := phonenumbers.Format(ex, phonenumbers.E164)
			for _, raw := range []string{e164, e164 + "7", e164[:len(e164)-1]} {
				num, err := phonenumbers.Parse(raw, "")
				if err != nil {
					continue
				}
				want := phonenumbers.IsValidNumber(num) && phonenumbers.GetNumberType(num) != phonenumbers.FIXED_LINE
				p, err := parsePhone(raw, "", true)
				if got := err == nil; got != want {
					t.Errorf("%s (%s %v): accepted %v (%v), the library says %v", raw, region, typ, got, err, want)
				}
				if err == nil {
					accepted++
					if p.Region != phonenumbers.GetRegionCodeForNumber(num) || p.E164 != phonenumbers.Format(num, phonenumbers.E164) {
						t.Errorf("%s: got %+v", raw, p)
					}
				}
				n++
			}
		}
	}
	if n < 1000 || accepted < 300 {
		t.Fatalf("only %d numbers checked, %d accepted: the library's examples are missing", n, accepted)
	}
	t.Logf("%d numbers checked, %d accepted", n, accepted)
}
