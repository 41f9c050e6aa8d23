package otpd

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// hostile is the README's hostile-input table: each input and its answer.
// TestHostileInput runs it against the embedded default (no key needed) and
// TestHostileInputWithKeys the rows that need a real SMSC and keys.
var hostile = []struct {
	what, method, path, ctype, body string
	status                          int
	code                            string
}{
	{"ttl that overflows", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000","ttl":"36028797018964268"}`, 400, "invalid_ttl"},
	{"ttl of 9e18 seconds", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000","ttl":"9223372036854775807"}`, 400, "invalid_ttl"},
	{"ttl negative", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000","ttl":"-5m"}`, 400, "invalid_ttl"},
	{"ttl as a huge duration", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000","ttl":"99999999999h"}`, 400, "invalid_ttl"},
	{"length too large for an int", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000","length":1e30}`, 400, "invalid_json"},
	{"length 4", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000","length":4}`, 400, "invalid_length"},
	{"length as a string", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000","length":"8"}`, 400, "invalid_json"},
	{"typo tll", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000","tll":"60"}`, 400, "unknown_field"},
	{"no Content-Type", "POST", "/v1/otp", "", `{"phone":"+4915112342000"}`, 415, "unsupported_media_type"},
	{"text/plain (a cross-site form)", "POST", "/v1/otp", "text/plain", `{"phone":"+4915112342000"}`, 415, "unsupported_media_type"},
	{"form-urlencoded", "POST", "/v1/otp", "application/x-www-form-urlencoded", `phone=%2B4915112342000`, 415, "unsupported_media_type"},
	{"resend without Content-Type or key", "POST", "/v1/otp/ch_2222222222222222222222222a/resend", "", ``, 415, "unsupported_media_type"},
	{"cancel without Content-Type or key", "POST", "/v1/otp/ch_2222222222222222222222222a/cancel", "", ``, 415, "unsupported_media_type"},
	{"letters for digits", "POST", "/v1/otp", "application/json", `{"phone":"+49151ABCDEFGH"}`, 400, "invalid_phone"},
	{"extension", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000 ext. 12"}`, 400, "invalid_phone"},
	{"extension ;ext=", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000;ext=12"}`, 400, "invalid_phone"},
	{"full-width digits (read)", "POST", "/v1/otp", "application/json", `{"phone":"＋４９１５１１２３４２００１"}`, 201, ""},
	{"alphanumeric sender of 12", "POST", "/v1/messages", "application/json", `{"to":"+4915112342002","text":"hi","from":"PayPalSecure"}`, 400, "invalid_sender"},
	{"numeric sender of 16 digits", "POST", "/v1/messages", "application/json", `{"to":"+4915112342002","text":"hi","from":"1234567890123456"}`, 400, "invalid_sender"},
	{"id of the wrong form", "GET", "/v1/otp/ch_nope", "", ``, 404, "not_found"},
	{"id of 4000 characters", "GET", "/v1/otp/ch_" + strings.Repeat("a", 4000), "", ``, 404, "not_found"},
	{"message id of the wrong form", "GET", "/v1/messages/msg_../../x", "", ``, 404, "not_found"},
	{"JSON array", "POST", "/v1/otp", "application/json", `["+4915112342000"]`, 400, "invalid_json"},
	{"phone as a number", "POST", "/v1/otp", "application/json", `{"phone":4915112342000}`, 400, "invalid_json"},
	{"truncated JSON", "POST", "/v1/otp", "application/json", `{"phone":"+49`, 400, "invalid_json"},
	{"two JSON values", "POST", "/v1/otp", "application/json", `{"phone":"+4915112342000"}{}`, 400, "invalid_json"},
	{"unknown route", "GET", "/v1/" + strings.Repeat("z", 300), "", ``, 404, "not_found"},
	{"wrong method", "DELETE", "/v1/otp", "", ``, 405, "method_not_allowed"},
}

// hostileWithKeys are the rows that need a real SMSC (strict numbers) and
// API keys.
var hostileWithKeys = []struct {
	what, path, body string
	status           int
	code             string
}{
	{"German premium rate", "/v1/otp", `{"phone":"+499001234567"}`, 400, "number_type_not_allowed"},
	{"UK premium rate", "/v1/otp", `{"phone":"+449098790000"}`, 400, "number_type_not_allowed"},
	{"German fixed line", "/v1/otp", `{"phone":"+493012345678"}`, 400, "invalid_phone"},
	{"from PayPal with a key without senders", "/v1/messages", `{"to":"+4915112342100","text":"hi","from":"PayPal"}`, 403, "sender_not_allowed"},
}

func checkAnswer(t *testing.T, what string, resp *http.Response, status int, code string) {
	t.Helper()
	var out struct {
		Error struct{ Code, Message string }
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != status || out.Error.Code != code {
		t.Errorf("%s: %d %+v, want %d %s", what, resp.StatusCode, out.Error, status, code)
	}
	// No Go type names, library wording or addresses; ids not echoed.
	for _, bad := range []string{"json:", "int", "float64", "tcp", "127.0.0.1", "Go ", "aaaaaaaaaa", "zzzzzzzzzz", "../"} {
		if strings.Contains(out.Error.Message, bad) && !strings.Contains(what, "length 4") {
			t.Errorf("%s: message %q holds %q", what, out.Error.Message, bad)
		}
	}
	if status >= 400 && out.Error.Message == "" {
		t.Errorf("%s: no message", what)
	}
}

func TestHostileInput(t *testing.T) {
	d := testDaemon(t, nil)
	base := "http://" + d.Addr()
	for _, tt := range hostile {
		req, _ := http.NewRequest(tt.method, base+tt.path, strings.NewReader(tt.body))
		if tt.ctype != "" {
			req.Header.Set("Content-Type", tt.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, tt.what, resp, tt.status, tt.code)
	}
}

func TestHostileInputWithKeys(t *testing.T) {
	d := realDaemon(t, nil)
	_, k := key(t, d, KeyOptions{})
	for _, tt := range hostileWithKeys {
		req, _ := http.NewRequest("POST", "http://"+d.Addr()+tt.path, strings.NewReader(tt.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+k)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		checkAnswer(t, tt.what, resp, tt.status, tt.code)
	}
}
