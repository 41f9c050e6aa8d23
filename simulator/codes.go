package simulator

import "regexp"

// findCodes returns the codes in text: the matches of re (its first
// submatch when it has groups) first, then each run of 4 to 10 ASCII
// digits, without repeats. Never nil, so that JSON shows [].
func findCodes(text string, re *regexp.Regexp) []string {
	out := []string{}
	add := func(c string) {
		if c == "" {
			return
		}
		for _, x := range out {
			if x == c {
				return
			}
		}
		out = append(out, c)
	}
	if re != nil {
		for _, sm := range re.FindAllStringSubmatch(text, -1) {
			if len(sm) > 1 {
				add(sm[1])
			} else {
				add(sm[0])
			}
		}
	}
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isDigit(text[j]) {
			j++
		}
		if n := j - i; n >= 4 && n <= 10 {
			add(text[i:j])
		}
		i = j
	}
	return out
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }
