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
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otpd/otpd/smpp"
)

// receiptSink collects the deliver_sm an application's session gets.
type receiptSink chan *smpp.DeliverSM

func (rs receiptSink) ServeSMPP(ctx context.Context, s *smpp.Session, req smpp.PDU) smpp.PDU {
	if d, ok := req.(*smpp.DeliverSM); ok {
		c := *d
		c.ShortMessage = append([]byte(nil), d.ShortMessage...)
		c.Options = append(smpp.Options(nil), d.Options...)
		rs <- &c
	}
	return smpp.Reply(req, smpp.ESME_ROK)
}

func (rs receiptSink) wait(t *testing.T) *smpp.DeliverSM {
	t.Helper()
	select {
	case d := <-rs:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no deliver_sm within 10s")
		return nil
	}
}

func dialDoor(t *testing.T, e *doorEnv, bind smpp.BindType, id, pw string, h smpp.Handler) *smpp.Session {
	t.Helper()
	s, err := smpp.Dial(context.Background(), e.d.SMPPDoor().Addr(), smpp.Config{Bind: bind, SystemID: id, Password: pw, Handler: h, EnquireLinkInterval: -1})
	if err != nil {
		t.Fatalf("bind %s: %v", id, err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestSMPPDoor(t *testing.T) {
	e := doorDaemon(t, func(c *Config) { c.SMPPListen = "127.0.0.1:0" })
	ctx := context.Background()
	if err := CreateSMPPAccount(ctx, e.d.store, e.keyID, "app1", "s3cret!", 0); err != nil {
		t.Fatal(err)
	}
	if err := CreateSMPPAccount(ctx, e.d.store, e.keyID, "app1", "x", 0); err == nil {
		t.Fatal("a system_id given twice")
	}
	if err := CreateSMPPAccount(ctx, e.d.store, e.keyID, "app2", "ninechars", 0); err == nil {
		t.Fatal("a password longer than 8")
	}
	// Bad credentials.
	for _, c := range [][2]string{{"app1", "wrong"}, {"nobody", "s3cret!"}} {
		_, err := smpp.Dial(ctx, e.d.SMPPDoor().Addr(), smpp.Config{SystemID: c[0], Password: c[1], EnquireLinkInterval: -1})
		want := smpp.ESME_RINVPASWD
		if c[0] == "nobody" {
			want = smpp.ESME_RINVSYSID
		}
		if !errors.Is(err, want) {
			t.Errorf("bind %s/%s: %v, want %s", c[0], c[1], err, want)
		}
	}

	sink := make(receiptSink, 4)
	s := dialDoor(t, e, smpp.BindTransceiver, "app1", "s3cret!", sink)
	resp, err := s.Submit(ctx, &smpp.SubmitSM{SourceAddr: "ACME", DestAddrTON: 1, DestAddrNPI: 1, DestinationAddr: "4915112346070",
		RegisteredDelivery: 1, ShortMessage: []byte("SMPP code 135790")})
	if err != nil || !strings.HasPrefix(resp.MessageID, "msg_") {
		t.Fatalf("submit: %v %+v", err, resp)
	}
	if m := e.simMessage("+4915112346070"); m.Text != "SMPP code 135790" || m.From != "ACME" {
		t.Fatalf("simulator: %+v", m)
	}
	d := sink.wait(t)
	r, err := smpp.ParseReceipt(d)
	if err != nil || r.ID != resp.MessageID || r.Stat != "DELIVRD" || !d.IsReceipt() || d.SourceAddr != "4915112346070" || d.DestinationAddr != "ACME" {
		t.Fatalf("receipt %+v %v (%q)", r, err, d.ShortMessage)
	}
	// The message is otpd's own.
	nc := client{t: t, base: e.base, key: e.key}
	if st, body, _ := nc.do("GET", "/v1/messages/"+resp.MessageID, nil); st != 200 || body["delivery"].(map[string]any)["state"] != "delivered" {
		t.Fatalf("native: %d %v", st, body)
	}

	// Refusals in command_status.
	for name, p := range map[string]*smpp.SubmitSM{
		"bad number":        {DestAddrTON: 1, DestinationAddr: "12", ShortMessage: []byte("x")},
		"empty text":        {DestAddrTON: 1, DestinationAddr: "4915112346071"},
		"one of 7 segments": {DestAddrTON: 1, DestinationAddr: "4915112346071", ESMClass: 0x40, ShortMessage: append([]byte{5, 0, 3, 7, 7, 1}, "part"...)},
		"bad source":        {SourceAddr: "\x01bad", DestAddrTON: 1, DestinationAddr: "4915112346071", ShortMessage: []byte("x")},
	} {
		want := map[string]smpp.CommandStatus{"bad number": smpp.ESME_RINVDSTADR, "empty text": smpp.ESME_RINVMSGLEN,
			"one of 7 segments": smpp.ESME_RINVMSGLEN, "bad source": smpp.ESME_RINVSRCADR}[name]
		if _, err := s.Submit(ctx, p); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}
}

// TestSMPPDoorLongMessage: the segments of a long message (UDH, then
// sar_*) each get an id once stored; the last queues the whole text, and
// each id gets its receipt.
func TestSMPPDoorLongMessage(t *testing.T) {
	e := doorDaemon(t, func(c *Config) { c.SMPPListen = "127.0.0.1:0" })
	ctx := context.Background()
	if err := CreateSMPPAccount(ctx, e.d.store, e.keyID, "kannel", "pw", 0); err != nil {
		t.Fatal(err)
	}
	sink := make(receiptSink, 8)
	s := dialDoor(t, e, smpp.BindTransceiver, "kannel", "pw", sink)
	first, second := strings.Repeat("a", 153), "and the end"
	var ids []string
	for i, seg := range []string{first, second} {
		resp, err := s.Submit(ctx, &smpp.SubmitSM{DestAddrTON: 1, DestinationAddr: "4915112346075", ESMClass: 0x40, RegisteredDelivery: 1,
			ShortMessage: append([]byte{5, 0, 3, 0x2a, 2, byte(i + 1)}, seg...)})
		if err != nil {
			t.Fatalf("segment %d: %v", i+1, err)
		}
		ids = append(ids, resp.MessageID)
	}
	if ids[0] == ids[1] {
		t.Fatalf("ids %v", ids)
	}
	if m := e.simMessage("+4915112346075"); m.Text != first+second || m.Segments != 2 {
		t.Fatalf("at the simulator: %d segments %q", m.Segments, m.Text)
	}
	got := map[string]bool{}
	for range ids {
		r, err := smpp.ParseReceipt(sink.wait(t))
		if err != nil || r.Stat != "DELIVRD" {
			t.Fatalf("receipt %+v %v", r, err)
		}
		got[r.ID] = true
	}
	if !got[ids[0]] || !got[ids[1]] {
		t.Fatalf("receipts for %v, want %v", got, ids)
	}
	// sar_* segments, the last first.
	for _, seq := range []uint8{2, 1} {
		p := &smpp.SubmitSM{DestAddrTON: 1, DestinationAddr: "4915112346076", ShortMessage: []byte(map[uint8]string{1: "sar one ", 2: "sar two"}[seq])}
		p.Options.SetSAR(smpp.SAR{Ref: 77, Total: 2, Seq: seq})
		if _, err := s.Submit(ctx, p); err != nil {
			t.Fatalf("sar %d: %v", seq, err)
		}
	}
	if m := e.simMessage("+4915112346076"); m.Text != "sar one sar two" {
		t.Fatalf("sar at the simulator: %q", m.Text)
	}
}

// TestSMPPDoorHoldsReceipts: a receipt waits while the application has no
// receiver bind, and goes to the receiver it binds later.
func TestSMPPDoorHoldsReceipts(t *testing.T) {
	e := doorDaemon(t, func(c *Config) { c.SMPPListen = "127.0.0.1:0" })
	ctx := context.Background()
	if err := CreateSMPPAccount(ctx, e.d.store, e.keyID, "legacy", "pw", 1); err != nil {
		t.Fatal(err)
	}
	tx := dialDoor(t, e, smpp.BindTransmitter, "legacy", "pw", nil)
	resp, err := tx.Submit(ctx, &smpp.SubmitSM{DestAddrTON: 1, DestinationAddr: "4915112346080", RegisteredDelivery: 1, ShortMessage: []byte("held 1")})
	if err != nil {
		t.Fatal(err)
	}
	// Over the account's 1 submit a second.
	if _, err := tx.Submit(ctx, &smpp.SubmitSM{DestAddrTON: 1, DestinationAddr: "4915112346081", ShortMessage: []byte("too fast")}); !errors.Is(err, smpp.ESME_RTHROTTLED) {
		t.Fatalf("second submit at once: %v, want ESME_RTHROTTLED", err)
	}
	// The receipt arrives at otpd and is held.
	eventually(t, "receipt held", func() bool {
		vs, _ := ListCallbackViews(ctx, e.d.store, true, 10)
		return len(vs) == 1 && vs[0].State == callbackPending && vs[0].Kind == callbackSMPP && strings.Contains(vs[0].LastError, "no receiver")
	})
	sink := make(receiptSink, 4)
	dialDoor(t, e, smpp.BindReceiver, "legacy", "pw", sink)
	r, err := smpp.ParseReceipt(sink.wait(t))
	if err != nil || r.ID != resp.MessageID || r.Stat != "DELIVRD" {
		t.Fatalf("held receipt: %+v %v", r, err)
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "otpd test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// TestSMPPDoorTLSAndNetworks: the door speaks TLS when given a
// certificate, and a key's networks hold for its binds.
func TestSMPPDoorTLSAndNetworks(t *testing.T) {
	cert, key := selfSigned(t, t.TempDir())
	e := doorDaemon(t, func(c *Config) { c.SMPPListen, c.SMPPTLSCert, c.SMPPTLSKey = "127.0.0.1:0", cert, key })
	ctx := context.Background()
	narrowID, _, _ := CreateKey(ctx, e.d.store, "office", "10.0.0.0/8")
	if err := CreateSMPPAccount(ctx, e.d.store, e.keyID, "tlsapp", "pw", 0); err != nil {
		t.Fatal(err)
	}
	if err := CreateSMPPAccount(ctx, e.d.store, narrowID, "office", "pw", 0); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pb, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pb)
	tc := &tls.Config{RootCAs: pool}
	s, err := smpp.Dial(ctx, e.d.SMPPDoor().Addr(), smpp.Config{SystemID: "tlsapp", Password: "pw", TLS: tc, EnquireLinkInterval: -1})
	if err != nil {
		t.Fatalf("TLS bind: %v", err)
	}
	defer s.Close(ctx)
	if resp, err := s.Submit(ctx, &smpp.SubmitSM{DestAddrTON: 1, DestinationAddr: "4915112346095", ShortMessage: []byte("over TLS")}); err != nil || !strings.HasPrefix(resp.MessageID, "msg_") {
		t.Fatalf("submit over TLS: %v", err)
	}
	e.simMessage("+4915112346095")
	if _, err := smpp.Dial(ctx, e.d.SMPPDoor().Addr(), smpp.Config{SystemID: "tlsapp", Password: "pw", EnquireLinkInterval: -1, BindTimeout: 2 * time.Second}); err == nil {
		t.Fatal("a plain bind to the TLS door worked")
	}
	if _, err := smpp.Dial(ctx, e.d.SMPPDoor().Addr(), smpp.Config{SystemID: "office", Password: "pw", TLS: tc, EnquireLinkInterval: -1}); !errors.Is(err, smpp.ESME_RBINDFAIL) {
		t.Fatalf("bind from outside the key's networks: %v", err)
	}
}

// TestSMPPDoorRecoversParts: a long message whose segments were all stored
// but not queued (otpd stopped in between) is queued at the door's start;
// segments of a message left incomplete for a day are dropped.
func TestSMPPDoorRecoversParts(t *testing.T) {
	e := doorDaemon(t, func(c *Config) { c.SMPPListen = "127.0.0.1:0" })
	ctx := context.Background()
	if err := CreateSMPPAccount(ctx, e.d.store, e.keyID, "crashy", "pw", 0); err != nil {
		t.Fatal(err)
	}
	sec := e.d.svc.sec
	part := func(seq int, text string) smppPart {
		id := NewID("msg")
		return smppPart{Seq: seq, Total: 2, PartID: id, Sealed: sec.Seal(id, text)}
	}
	now := time.Now()
	err := e.d.store.Write(ctx, func(tx *Tx) error {
		for _, p := range []smppPart{part(1, "stored "), part(2, "before the crash")} {
			if _, err := storeSMPPPart(tx, "crashy", "+4915112346077|OTPD|9|2", p, now); err != nil {
				return err
			}
		}
		_, err := storeSMPPPart(tx, "crashy", "+4915112346078|OTPD|10|2", part(1, "never completed"), now.Add(-25*time.Hour))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.d.SMPPDoor().recoverParts()
	if m := e.simMessage("+4915112346077"); m.Text != "stored before the crash" {
		t.Fatalf("recovered: %q", m.Text)
	}
	sets, _ := e.d.store.completeSMPPSets(ctx)
	var n int
	e.d.store.QueryRow(ctx, `SELECT COUNT(*) FROM smpp_parts`).Scan(&n)
	if len(sets) != 0 || n != 0 {
		t.Fatalf("left: %d complete sets, %d segments", len(sets), n)
	}
}
