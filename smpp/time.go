package smpp

import (
	"fmt"
	"time"
)

// SMPP time fields (schedule_delivery_time, validity_period, final_date)
// are 16 characters (SMPP 3.4 section 7.1.1):
//
//	absolute: YYMMDDhhmmsstnnp  t tenths of a second, nn offset from UTC in
//	                            quarter hours, p '+' ahead of UTC, '-' behind
//	relative: YYMMDDhhmmss000R  an interval from now

// FormatAbsoluteTime renders t as an absolute SMPP time in its own zone,
// or in UTC when the zone's offset is not a whole number of quarter hours
// or is more than the 12 hours (48 quarter hours) that nn can say
// (UTC+13 and UTC+14 zones, for one).
func FormatAbsoluteTime(t time.Time) string {
	_, off := t.Zone()
	if off%(15*60) != 0 || off > 48*15*60 || off < -48*15*60 {
		t = t.UTC()
		off = 0
	}
	sign := byte('+')
	if off < 0 {
		sign = '-'
		off = -off
	}
	q := off / (15 * 60)
	return fmt.Sprintf("%02d%02d%02d%02d%02d%02d%d%02d%c",
		t.Year()%100, int(t.Month()), t.Day(), t.Hour(), t.Minute(), t.Second(),
		t.Nanosecond()/100_000_000, q, sign)
}

// FormatRelativeTime renders d as a relative SMPP time in days, hours,
// minutes and seconds, and beyond 99 days in months of 30 days, up to 99
// months and 30 days (3000 days), where it is capped. d is rounded down to
// a second; negative is zero. ParseRelativeTime reads it back as d.
func FormatRelativeTime(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	days := s / 86400
	s %= 86400
	if days > 99 {
		// 99 days is the most the DD field carries with months at zero; use
		// months (of 30 days) for the rest, as SMSCs read them.
		months := days / 30
		days %= 30
		if months > 99 {
			months, days, s = 99, 30, 0
		}
		return fmt.Sprintf("00%02d%02d%02d%02d%02d000R", months, days, s/3600, s%3600/60, s%60)
	}
	return fmt.Sprintf("0000%02d%02d%02d%02d000R", days, s/3600, s%3600/60, s%60)
}

// Relative times count a year as 365 days and a month as 30 (SMPP 3.4
// leaves them open); FormatRelativeTime writes months of 30 days, so an
// interval reads back as itself.
const (
	relYear  = 365 * 24 * time.Hour
	relMonth = 30 * 24 * time.Hour
)

func relative(f [7]int) time.Duration {
	return time.Duration(f[0])*relYear + time.Duration(f[1])*relMonth + time.Duration(f[2])*24*time.Hour +
		time.Duration(f[3])*time.Hour + time.Duration(f[4])*time.Minute + time.Duration(f[5])*time.Second
}

// ParseRelativeTime reads a relative SMPP time as its interval (years of
// 365 days, months of 30). An absolute or malformed time is an error.
func ParseRelativeTime(s string) (time.Duration, error) {
	if len(s) == 16 && s[15] != 'R' {
		return 0, fmt.Errorf("smpp: time %q is absolute, not relative", s)
	}
	var zero time.Time
	t, err := ParseTime(s, zero)
	if err != nil {
		return 0, err
	}
	if s == "" {
		return 0, fmt.Errorf("smpp: empty time is not a relative time")
	}
	return t.Sub(zero), nil
}

// CheckTime reports whether s is a valid SMPP time field: empty, or 16
// characters of the absolute or relative form (digits where digits go,
// the tenths, the quarter hours 00 to 48 and '+' or '-', or 'R'; an
// absolute date that exists).
func CheckTime(s string) error {
	_, err := ParseTime(s, time.Time{})
	return err
}

// ParseTime reads an SMPP time. An absolute time gives its instant; a
// relative one gives now plus the interval (years of 365 days, months of
// 30). The empty string gives the zero
// time and no error (the field is NULL: "immediate" or "SMSC default").
func ParseTime(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if len(s) != 16 {
		return time.Time{}, fmt.Errorf("smpp: time %q: %d characters, want 16", s, len(s))
	}
	var f [7]int
	for i := 0; i < 6; i++ {
		a, b := s[2*i], s[2*i+1]
		if a < '0' || a > '9' || b < '0' || b > '9' {
			return time.Time{}, fmt.Errorf("smpp: time %q: non-digit in position %d", s, 2*i+1)
		}
		f[i] = int(a-'0')*10 + int(b-'0')
	}
	if s[12] < '0' || s[12] > '9' || s[13] < '0' || s[13] > '9' || s[14] < '0' || s[14] > '9' {
		return time.Time{}, fmt.Errorf("smpp: time %q: non-digit in positions 13-15", s)
	}
	tenths := int(s[12] - '0')
	nn := int(s[13]-'0')*10 + int(s[14]-'0')
	switch s[15] {
	case 'R':
		return now.Add(relative(f)), nil
	case '+', '-':
		if f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59 || nn > 48 {
			return time.Time{}, fmt.Errorf("smpp: time %q: field out of range", s)
		}
		off := nn * 15 * 60
		if s[15] == '-' {
			off = -off
		}
		loc := time.FixedZone("", off)
		t := time.Date(2000+f[0], time.Month(f[1]), f[2], f[3], f[4], f[5], tenths*100_000_000, loc)
		if t.Day() != f[2] {
			return time.Time{}, fmt.Errorf("smpp: time %q: no such day", s)
		}
		return t, nil
	}
	return time.Time{}, fmt.Errorf("smpp: time %q: last character %q, want '+', '-' or 'R'", s, s[15])
}
