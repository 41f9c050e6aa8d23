package dlr

import "testing"

func TestStateWords(t *testing.T) {
	tests := []struct {
		s     State
		name  string
		stat  string
		final bool
	}{
		{NoState, "NONE", "", false},
		{Enroute, "ENROUTE", "ENROUTE", false},
		{Delivered, "DELIVERED", "DELIVRD", true},
		{Expired, "EXPIRED", "EXPIRED", true},
		{Deleted, "DELETED", "DELETED", true},
		{Undeliverable, "UNDELIVERABLE", "UNDELIV", true},
		{Accepted, "ACCEPTED", "ACCEPTD", false},
		{Unknown, "UNKNOWN", "UNKNOWN", true},
		{Rejected, "REJECTED", "REJECTD", true},
		{Skipped, "SKIPPED", "SKIPPED", true},
		{State(10), "State(10)", "", false},
		{State(255), "State(255)", "", false},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.name {
			t.Errorf("State(%d).String() = %q, want %q", uint8(tt.s), got, tt.name)
		}
		if got := tt.s.Stat(); got != tt.stat {
			t.Errorf("State(%d).Stat() = %q, want %q", uint8(tt.s), got, tt.stat)
		}
		if got := tt.s.Final(); got != tt.final {
			t.Errorf("State(%d).Final() = %v, want %v", uint8(tt.s), got, tt.final)
		}
		if tt.stat != "" {
			if len(tt.stat) != 7 {
				t.Errorf("stat word %q is not 7 characters", tt.stat)
			}
			if got, ok := ParseStat(tt.stat); !ok || got != tt.s {
				t.Errorf("ParseStat(%q) = %v, %v; want %v", tt.stat, got, ok, tt.s)
			}
		}
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		in   string
		want State
		ok   bool
	}{
		{"DELIVRD", Delivered, true},
		{"delivrd", Delivered, true},
		{" Delivered ", Delivered, true},
		{"DELIVERD", Delivered, true},
		{"UNDELIVERABLE", Undeliverable, true},
		{"undelivered", Undeliverable, true},
		{"FAILED", Undeliverable, true},
		{"REJECTED", Rejected, true},
		{"reject", Rejected, true},
		{"ACCEPTED", Accepted, true},
		{"ACKED", Accepted, true},
		{"BUFFRED", Enroute, true},
		{"Scheduled", Enroute, true},
		{"EXPIRD", Expired, true},
		{"DELETD", Deleted, true},
		{"skipped", Skipped, true},
		{"", NoState, false},
		{"2", NoState, false},
		{"DELIVRDX", NoState, false},
		{"NOROUTE", NoState, false},
		{"UNDELIVERABLEUNDELIVERABLE", NoState, false},
	}
	for _, tt := range tests {
		got, ok := ParseStat(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseStat(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
