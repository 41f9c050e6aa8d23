package otpd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/dlr"

	"github.com/otpd/otpd/simulator"
)

// TestResendKeepsTemplateAndSender: the second SMS reads as the first.
func TestResendKeepsTemplateAndSender(t *testing.T) {
	d := testDaemon(t, func(c *Config) { c.OTP.ResendAfter = time.Second })
	c := newClient(t, d)
	st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340002", "template": "Код {otp} для {phone} ({ttl})", "sender": "MyBank"})
	if st != 201 {
		t.Fatalf("create: %d %v", st, body)
	}
	id := body["id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first, err := d.Simulator().WaitForMessage(ctx, simulator.Filter{To: "4915112340002"})
	if err != nil {
		t.Fatal(err)
	}
	d.svc.skew.Store(int64(2 * time.Second))
	if st, body, _ := c.do("POST", "/v1/otp/"+id+"/resend", nil); st != 200 {
		t.Fatalf("resend: %d %v", st, body)
	}
	for {
		msgs := d.Simulator().Messages(simulator.Filter{To: "4915112340002"})
		if len(msgs) == 2 {
			second := msgs[0]
			if !strings.HasPrefix(second.Text, "Код ") || !strings.Contains(second.Text, "+4915112340002") || second.From != "MyBank" || second.DataCoding != 8 {
				t.Fatalf("first %+v\nsecond %+v", first, second)
			}
			return
		}
		if ctx.Err() != nil {
			t.Fatal("no second SMS")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNoCodeAtRest: the database holds HMACs, no code, no API key; the
// sealed SMS text is dropped once the SMSC acknowledged it.
func TestNoCodeAtRest(t *testing.T) {
	var dir string
	d := testDaemon(t, func(c *Config) { dir = c.DataDir })
	c := newClient(t, d)
	_, key, err := CreateKey(context.Background(), d.store, "k", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	id := create(t, c, "+4915112340003")
	code := smsCode(t, d, "+4915112340003", start)
	// Wait until the message is submitted (its sealed text dropped).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ := c.do("GET", "/v1/otp/"+id, nil)
		if st := body["delivery"].(map[string]any)["state"]; st == "submitted" || st == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not submitted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var sealed []byte
	if err := d.store.QueryRow(context.Background(), `SELECT sealed FROM messages WHERE challenge_id = ?`, id).Scan(&sealed); err != nil || sealed != nil {
		t.Fatalf("sealed text kept after submit: %d octets, %v", len(sealed), err)
	}
	// The database and its write-ahead log.
	files, _ := filepath.Glob(filepath.Join(dir, "otpd.db*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), code) {
			t.Errorf("%s holds the code", f)
		}
		if strings.Contains(string(b), key) {
			t.Errorf("%s holds the API key", f)
		}
	}
	var mac []byte
	d.store.QueryRow(context.Background(), `SELECT code_hmac FROM challenges WHERE id = ?`, id).Scan(&mac)
	if len(mac) != 32 || !d.svc.sec.CheckCode(id, code, mac) || d.svc.sec.CheckCode("ch_other", code, mac) {
		t.Fatal("stored value is not the code's HMAC bound to the challenge")
	}
}

func TestLimitsAndCountries(t *testing.T) {
	t.Run("allow list", func(t *testing.T) {
		d := testDaemon(t, func(c *Config) { c.Limits.AllowCountries = []string{"DE"} })
		c := newClient(t, d)
		create(t, c, "+4915112340004")
		if st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+12015550123"}); st != 400 || body["error"].(map[string]any)["code"] != "country_not_allowed" {
			t.Fatalf("US number with DE allowed: %d %v", st, body)
		}
	})
	t.Run("per country", func(t *testing.T) {
		d := testDaemon(t, func(c *Config) { c.Limits.PerCountry = Rate{N: 2, Per: time.Hour} })
		c := newClient(t, d)
		create(t, c, "+4915112340005")
		create(t, c, "+4915112340006")
		if st, _, h := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340007"}); st != 429 || h.Get("Retry-After") == "" {
			t.Fatalf("third +49: %d", st)
		}
		create(t, c, "+12015550124") // another country code
	})
	t.Run("global", func(t *testing.T) {
		d := testDaemon(t, func(c *Config) { c.Limits.Global = Rate{N: 2, Per: time.Hour} })
		c := newClient(t, d)
		create(t, c, "+4915112340008")
		create(t, c, "+12015550125")
		if st, _, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340009"}); st != 429 {
			t.Fatalf("third in all: %d", st)
		}
	})
	t.Run("a refused send is not counted by the other limits", func(t *testing.T) {
		d := testDaemon(t, func(c *Config) {
			c.Limits.Global = Rate{N: 3, Per: time.Hour}
			c.Limits.PerPhone = Rate{N: 1, Per: time.Hour}
		})
		c := newClient(t, d)
		create(t, c, "+4915112340030")
		for i := 0; i < 3; i++ { // refused by the phone limit, after the global one
			if st, _, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340030"}); st != 429 {
				t.Fatalf("second to the same number: %d", st)
			}
		}
		create(t, c, "+4915112340031")
		create(t, c, "+4915112340032")
	})
	t.Run("per key", func(t *testing.T) {
		sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sim.Close(context.Background()) }) // after the daemon's
		d := testDaemon(t, func(c *Config) {
			c.SMSC.Addr, c.SMSC.SystemID = sim.Addr(), "otp"
			c.Limits.PerKey = Rate{N: 1, Per: time.Hour}
		})
		_, k1, _ := CreateKey(context.Background(), d.store, "a", "")
		_, k2, _ := CreateKey(context.Background(), d.store, "b", "")
		c := newClient(t, d)
		c.key = k1
		create(t, c, "+4915112340010")
		if st, _, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340011"}); st != 429 {
			t.Fatalf("second for key 1: %d", st)
		}
		c.key = k2
		create(t, c, "+4915112340011")
	})
}

func TestLocaleTemplates(t *testing.T) {
	d := testDaemon(t, func(c *Config) {
		c.OTP.Templates = map[string]string{"en": "Code {otp}", "de": "Ihr Code: {otp}, gültig {ttl}, für {phone}"}
	})
	c := newClient(t, d)
	st, body, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340012", "locale": "de-AT", "ttl": "2m"})
	if st != 201 {
		t.Fatalf("de-AT falls back to de: %d %v", st, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := d.Simulator().WaitForMessage(ctx, simulator.Filter{To: "4915112340012"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m.Text, "Ihr Code: ") || !strings.Contains(m.Text, "gültig 2 minutes, für +4915112340012") || m.DataCoding != 0 {
		t.Fatalf("text %q data_coding %d (ü is in GSM 03.38)", m.Text, m.DataCoding)
	}
	if st, _, _ := c.do("POST", "/v1/otp", map[string]any{"phone": "+4915112340013", "locale": "fr"}); st != 400 {
		t.Fatalf("unknown locale: %d", st)
	}
}

func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	d := testDaemon(t, func(c *Config) { c.HTTP.TLSCert, c.HTTP.TLSKey = certFile, keyFile })
	pemBytes, _ := os.ReadFile(certFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := cl.Get("https://" + d.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + d.Addr() + "/healthz"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP answered on the TLS port")
	}
}

func writeCert(t *testing.T, dir string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "otpd.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cf, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cf, kf
}

func TestRateOff(t *testing.T) {
	cfg := NewConfig()
	r, err := ParseRate("off")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.PerPhone = r
	cfg.Defaults()
	if cfg.Limits.PerPhone.N != 0 || cfg.Limits.PerPhone.String() != "off" {
		t.Fatalf("off became %v", cfg.Limits.PerPhone)
	}
	l := newLimiter(cfg.Limits.PerPhone)
	for i := 0; i < 100; i++ {
		if _, ok, _, _ := l.take(context.Background(), "x", time.Now()); !ok {
			t.Fatal("an off limit refused")
		}
	}
	if r, _ := ParseRate("5/10m"); r.N != 5 || r.Per != 10*time.Minute {
		t.Fatal(r)
	}
	for _, bad := range []string{"5", "x/1m", "5/x", "-1/1m", "5/-1m"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestRetentionSweep(t *testing.T) {
	d := testDaemon(t, nil)
	c := newClient(t, d)
	start := time.Now()
	id := create(t, c, "+4915112340020")
	smsCode(t, d, "+4915112340020", start)
	waitState(t, c, id, "delivered")
	d.svc.skew.Store(int64(31 * 24 * time.Hour))
	d.sender.sweep()
	if st, _, _ := c.do("GET", "/v1/otp/"+id, nil); st != 404 {
		t.Fatalf("a challenge past the retention is still there: %d", st)
	}
}

func waitState(t *testing.T, c client, id, state string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body, _ := c.do("GET", "/v1/otp/"+id, nil)
		if body["delivery"].(map[string]any)["state"] == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not %s: %v", state, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWrongLengthCodeIsNotAnAttempt(t *testing.T) {
	d := testDaemon(t, nil)
	c := newClient(t, d)
	id := create(t, c, "+4915112340021")
	for _, code := range []string{"12345", "1234567"} {
		st, body, _ := c.do("POST", "/v1/otp/"+id+"/verify", map[string]any{"code": code})
		if st != 400 || body["error"].(map[string]any)["code"] != "invalid_code" {
			t.Fatalf("%s: %d %v", code, st, body)
		}
	}
	if _, body, _ := c.do("GET", "/v1/otp/"+id, nil); body["attempts_left"] != float64(5) {
		t.Fatalf("attempts used by codes of the wrong length: %v", body["attempts_left"])
	}
}

// A receipt that comes before its segment is recorded is kept as an
// orphan and applied when the segment is; with no orphans kept, recording
// a segment does not look for them.
func TestReceiptBeforeItsSegment(t *testing.T) {
	d := testDaemon(t, func(c *Config) {
		c.Sim.DLRDelay = "1h"           // no receipt from the simulator meanwhile
		c.SMSC.MessageIDFormat = "auto" // the embedded default is dec
	})
	c := newClient(t, d)
	id := create(t, c, "+4915112345678")
	ctx := context.Background()
	var msgID string
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := d.store.QueryRow(ctx, `SELECT id FROM messages WHERE challenge_id = ? AND state = ?`, id, StateSubmitted).Scan(&msgID)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message not submitted: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := d.svc.orphans.Load(); n != 0 {
		t.Fatalf("%d orphans counted before any", n)
	}
	// An id of digits is kept under each of its readings (see
	// dlr.IDForms): matching one drops the others.
	const rid = "123456789"
	forms := len(dlr.IDForms(rid))
	if forms < 2 {
		t.Fatalf("%s has %d forms; the test wants several", rid, forms)
	}
	r := smpp.Receipt{Receipt: dlr.Receipt{ID: rid, Stat: "DELIVRD", State: dlr.Delivered}}
	if err := d.svc.ApplyReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	if n := d.svc.orphans.Load(); n != int64(forms) {
		t.Fatalf("%d orphan rows counted, want %d", n, forms)
	}
	m, err := scanMessage(d.store.QueryRow(ctx, `SELECT `+messageCols+` FROM messages WHERE id = ?`, msgID))
	if err != nil {
		t.Fatal(err)
	}
	// The message's second segment, acknowledged with the orphan's id.
	if err := d.sender.recordSegment(m, 2, 2, rid); err != nil {
		t.Fatal(err)
	}
	var state string
	if err := d.store.QueryRow(ctx, `SELECT state FROM segments WHERE message_id = ? AND seq = 2`, msgID).Scan(&state); err != nil || state != StateDelivered {
		t.Fatalf("segment 2: state %q, %v; want the orphan receipt's %q", state, err, StateDelivered)
	}
	var left int
	d.store.QueryRow(ctx, `SELECT COUNT(*) FROM orphan_receipts`).Scan(&left)
	if n := d.svc.orphans.Load(); n != 0 || left != 0 {
		t.Fatalf("after the match: %d orphans counted, %d rows; want 0 and 0", n, left)
	}

	// Matched by another reading of its id ("10" read as hex is 16): the
	// row under the id as written stays, for the message it may name.
	r.ID = "10"
	if err := d.svc.ApplyReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := d.sender.recordSegment(m, 3, 3, "16"); err != nil {
		t.Fatal(err)
	}
	var key string
	d.store.QueryRow(ctx, `SELECT COUNT(*), MIN(smsc_key) FROM orphan_receipts`).Scan(&left, &key)
	if n := d.svc.orphans.Load(); n != 1 || left != 1 || key != "10" {
		t.Fatalf("after a match by another reading: %d orphans counted, %d rows (%q); want 1, 1 (\"10\")", n, left, key)
	}
}

// TestEmbeddedReceiptIDsAreDecimal: the embedded simulator's ids are
// decimal, in its receipts too, so otpd reads receipt ids as decimal only.
// Under the auto format, meant for SMSCs whose receipts may write an id in
// another base than their submit_sm_resp, a receipt whose id is the hex
// reading of a message's id would reach that message.
func TestEmbeddedReceiptIDsAreDecimal(t *testing.T) {
	d := testDaemon(t, func(c *Config) { c.Sim.DLRDelay = "1h" }) // no receipt from the simulator meanwhile
	if f := d.Config.SMSC.MessageIDFormat; f != "dec" {
		t.Fatalf("message id format %q with the embedded simulator, want dec", f)
	}
	c := newClient(t, d)
	ctx := context.Background()
	id := create(t, c, "+4915112345678")
	waitState(t, c, id, StateSubmitted)
	var smscID string
	if err := d.store.QueryRow(ctx, `SELECT s.smsc_id FROM segments s JOIN challenges c ON c.message_id = s.message_id WHERE c.id = ?`, id).Scan(&smscID); err != nil {
		t.Fatal(err)
	}
	var n big.Int
	if _, ok := n.SetString(smscID, 16); !ok {
		t.Fatalf("SMSC id %q is not digits", smscID)
	}
	other := n.Text(10) // written in hex, it is smscID
	if !slices.Contains(dlr.IDForms(other), dlr.Canonical(smscID)) {
		t.Fatalf("under auto, a receipt for %s would not reach %s: the test proves nothing", other, smscID)
	}
	r := smpp.Receipt{Receipt: dlr.Receipt{ID: other, Stat: "UNDELIV", State: dlr.Undeliverable}}
	if err := d.svc.ApplyReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	var state string
	if err := d.store.QueryRow(ctx, `SELECT state FROM segments WHERE smsc_id = ?`, smscID).Scan(&state); err != nil {
		t.Fatal(err)
	}
	if state != StateSubmitted {
		t.Errorf("segment %s is %s after the receipt for %s, want it untouched", smscID, state, other)
	}
	if got := counterValue(d.svc.metrics.Receipts.WithLabelValues("orphan")); got != 1 {
		t.Errorf("%v receipts kept for later, want 1 (the one for %s)", got, other)
	}
}

func TestRender(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{"{otp} is your code for {phone}, valid {ttl}. {otp}", "123456 is your code for +4915112345678, valid 5 minutes. 123456"},
		{"{{otp}}{ph{otp}one}{ttl", "{123456}{ph123456one}{ttl"},
		{"no placeholder", "no placeholder"},
	} {
		if got := render(tc.tmpl, "123456", "+4915112345678", 5*time.Minute); got != tc.want {
			t.Errorf("render(%q) = %q, want %q", tc.tmpl, got, tc.want)
		}
	}
}

// A receipt that comes as data_sm, as some SMSCs send every receipt, is
// matched like one in deliver_sm.
func TestDataSMReceipt(t *testing.T) {
	d := testDaemon(t, func(c *Config) { c.Sim.DLRDelay = "1h" }) // no receipt from the simulator
	c := newClient(t, d)
	id := create(t, c, "+4915112345678")
	ctx := context.Background()
	var smscID string
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := d.store.QueryRow(ctx, `SELECT s.smsc_id FROM segments s JOIN messages m ON m.id = s.message_id WHERE m.challenge_id = ?`, id).Scan(&smscID)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message not submitted: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ds := &smpp.DataSM{SourceAddr: "4915112345678", DestinationAddr: "OTPD", ESMClass: smpp.ESMClassDeliveryReceipt}
	ds.Options.SetCString(smpp.TagReceiptedMessageID, smscID)
	ds.Options.SetUint(smpp.TagMessageState, uint32(dlr.Delivered))
	resp := d.svc.ServeSMPP(ctx, nil, ds)
	if r, ok := resp.(*smpp.DataSMResp); !ok || r.Header.Status != smpp.ESME_ROK {
		t.Fatalf("answer to a data_sm receipt: %#v", resp)
	}
	waitState(t, c, id, "delivered")
}
