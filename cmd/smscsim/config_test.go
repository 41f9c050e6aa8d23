package main

import (
	"strings"
	"testing"
)

// TestConfigFileErrorsNameKeyAndLine: a wrong file is refused with the key
// and the line it is on, inside the lists of accounts and rules too.
func TestConfigFileErrorsNameKeyAndLine(t *testing.T) {
	tests := []struct {
		yaml string
		want []string
	}{
		{"smpp: 127.0.0.1:0\ncolour: blue\n", []string{"line 2", `"colour"`}},
		{"faults:\n  drop_rate: 0.1\n  drop_rat: 0.2\n", []string{"line 3", `"faults.drop_rat"`}},
		{"accounts:\n  - system_id: a\n    pasword: b\n", []string{"line 3", `"accounts[0].pasword"`}},
		{"rules:\n  - prefix: '+1'\n  - prefx: '+2'\n", []string{"line 3", `"rules[1].prefx"`}},
		{"retention: lots\n", []string{"line 1", "retention", `"lots"`}},
		{"accounts:\n  - max_binds: many\n", []string{"line 2", "accounts"}},
		{"faults:\n  drop_rate: 2\n", []string{"drop_rate"}},
	}
	for _, tt := range tests {
		_, _, err := load(t, "--config", writeFile(t, tt.yaml))
		for _, w := range tt.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want an error with %s", tt.yaml, err, w)
			}
		}
	}
}
