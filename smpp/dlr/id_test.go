package dlr

import (
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"762252143", "762252143"},
		{"0000762252143", "762252143"},
		{"2d6f0b6f", "762252143"},
		{"2D6F0B6F", "762252143"},
		{"00002d6f0b6f", "762252143"},
		{"0x2D6F0B6F", "762252143"},
		{"0000", "0"},
		{" 42 ", "42"},
		{"16FD2706-8BAF-433B-82EB-8C7FADA847DA", "16fd2706-8baf-433b-82eb-8c7fada847da"},
		{"MSG-Ab12", "MSG-Ab12"},
		{"abcdefg", "abcdefg"},
		{"", ""},
		// Past uint64: 20 hex digits.
		{"ffffffffffffffffffff", "1208925819614629174706175"},
		{strings.Repeat("f", 64), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)).String()},
		// Longer than MaxIDLen: verbatim.
		{strings.Repeat("a", 65), strings.Repeat("a", 65)},
		{strings.Repeat("0", 65), strings.Repeat("0", 65)},
	}
	for _, tt := range tests {
		if got := Canonical(tt.in); got != tt.want {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCanonicalIn(t *testing.T) {
	tests := []struct {
		in   string
		base Base
		want string
	}{
		{"12345678", Hex, "305419896"},
		{"12345678", Decimal, "12345678"},
		{"12345678", AutoBase, "12345678"},
		{"2d6f0b6f", Decimal, "762252143"}, // not decimal: AutoBase rules
		{"0x10", Decimal, "16"},
		{"uuid-ish", Hex, "uuid-ish"},
	}
	for _, tt := range tests {
		if got := CanonicalIn(tt.in, tt.base); got != tt.want {
			t.Errorf("CanonicalIn(%q, %d) = %q, want %q", tt.in, tt.base, got, tt.want)
		}
	}
}

func TestIDForms(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"2d6f0b6f", []string{"762252143"}},
		// Read as decimal, as hex (0x762252143 = 31711371587), and its
		// value in hex has letters (2d6f0b6f), so no third form.
		{"762252143", []string{"762252143", "31711371587"}},
		// 305419896 = 0x12345678: a hex id without letters is stored
		// under "12345678" by Canonical.
		{"305419896", []string{"305419896", "12973086870", "12345678"}},
		{"0010", []string{"10", "16"}}, // 10 is 0xa: has a letter, no third form
		{"0", []string{"0"}},
		{"msg-1", []string{"msg-1"}},
	}
	for _, tt := range tests {
		if got := IDForms(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("IDForms(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestIDLookup checks the documented strategy: a message stored under
// Canonical(resp id) is found under IDForms(receipt id), whichever bases
// the SMSC uses on the two sides.
func TestIDLookup(t *testing.T) {
	values := []string{"1", "10", "255", "305419896", "762252143", "4294967295", "18446744073709551615",
		"340282366920938463463374607431768211455", "98765432101"}
	format := map[string]func(*big.Int) []string{
		"dec": func(v *big.Int) []string { return []string{v.Text(10), "000" + v.Text(10)} },
		"hex": func(v *big.Int) []string {
			h := v.Text(16)
			return []string{h, strings.ToUpper(h), "0000" + h}
		},
	}
	for _, val := range values {
		v, _ := new(big.Int).SetString(val, 10)
		for respBase, rf := range format {
			for recBase, cf := range format {
				for _, resp := range rf(v) {
					key := Canonical(resp)
					for _, rec := range cf(v) {
						if !slices.Contains(IDForms(rec), key) {
							t.Errorf("resp %s %q (key %q) not found in IDForms(%s %q) = %q",
								respBase, resp, key, recBase, rec, IDForms(rec))
						}
						if !SameID(resp, rec) || !SameID(rec, resp) {
							t.Errorf("SameID(%q, %q) = false", resp, rec)
						}
						rk := CanonicalIn(resp, baseOf(respBase))
						ck := CanonicalIn(rec, baseOf(recBase))
						if rk != ck || rk != val {
							t.Errorf("CanonicalIn: %q -> %q, %q -> %q, want %q", resp, rk, rec, ck, val)
						}
					}
				}
			}
		}
	}
}

func baseOf(s string) Base {
	if s == "hex" {
		return Hex
	}
	return Decimal
}

func TestSameID(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"2d6f0b6f", "762252143", true},
		{"2D6F0B6F", "0762252143", true},
		{"0x2d6f0b6f", "762252143", true},
		{"0012AB", "12ab", true},
		{"0001234", "1234", true},
		{"12345678", "305419896", true},
		{"10", "16", true}, // "10" may be hex: documented ambiguity
		{"16", "a", false},
		{"2d6f0b6f", "762251119", false},
		{"1234", "1235", false},
		{"", "", false},
		{" ", "", false},
		{"abc", "abc", true},
		{"msg-1", "MSG-1", false},
		{"msg-1", " msg-1", true},
		{"16fd2706-8baf-433b-82eb-8c7fada847da", "16FD2706-8BAF-433B-82EB-8C7FADA847DA", true},
		{"16fd2706-8baf-433b-82eb-8c7fada847da", "16fd27068baf433b82eb8c7fada847da", false},
		{strings.Repeat("f", 52), "411376139330301510538742295639337626245683966408394965837152255", true},
		// The decimal form of 64 hex digits is 78 digits, past MaxIDLen.
		{strings.Repeat("f", 64), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1)).String(), false},
		{strings.Repeat("1", 65), strings.Repeat("1", 65), true},
		{"0" + strings.Repeat("1", 65), strings.Repeat("1", 65), false},
		{"ffffffffffffffffffffffff", "79228162514264337593543950335", true},
	}
	for _, tt := range tests {
		if got := SameID(tt.a, tt.b); got != tt.want {
			t.Errorf("SameID(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := SameID(tt.b, tt.a); got != tt.want {
			t.Errorf("SameID(%q, %q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}
