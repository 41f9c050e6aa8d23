package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/otpd/otpd/api"
	"github.com/otpd/otpd/otpd"
	"github.com/otpd/otpd/simulator"
)

// spec is an OpenAPI document with its schemas compiled.
type spec struct {
	t    *testing.T
	name string
	doc  map[string]any
	c    *jsonschema.Compiler
}

func load(t *testing.T, name string, b []byte) *spec {
	t.Helper()
	var y any
	if err := yaml.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	m := doc.(map[string]any)
	if m["openapi"] != "3.1.0" {
		t.Fatalf("%s: openapi %v, want 3.1.0", name, m["openapi"])
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("mem://"+name, doc); err != nil {
		t.Fatal(err)
	}
	return &spec{t: t, name: name, doc: m, c: c}
}

func ptr(parts ...string) string {
	r := strings.NewReplacer("~", "~0", "/", "~1")
	for i, p := range parts {
		parts[i] = r.Replace(p)
	}
	return "/" + strings.Join(parts, "/")
}

func (s *spec) at(pointer string) any {
	var v any = s.doc
	for _, p := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		p = strings.NewReplacer("~1", "/", "~0", "~").Replace(p)
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// deref follows a $ref to a component of the same document.
func (s *spec) deref(pointer string) string {
	for {
		m, _ := s.at(pointer).(map[string]any)
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/components/responses/") && !strings.HasPrefix(ref, "#/components/parameters/") {
			return pointer
		}
		pointer = strings.TrimPrefix(ref, "#")
	}
}

func (s *spec) schema(pointer string) *jsonschema.Schema {
	s.t.Helper()
	sch, err := s.c.Compile("mem://" + s.name + "#" + pointer)
	if err != nil {
		s.t.Fatalf("%s: schema %s: %v", s.name, pointer, err)
	}
	return sch
}

// operations are "METHOD /path" of every operation in the document.
func (s *spec) operations() []string {
	var ops []string
	for path, item := range s.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				ops = append(ops, strings.ToUpper(method)+" "+path)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

// check validates a response of the server against the document: the
// operation, the status and the JSON schema of its body.
func (s *spec) check(method, path string, status int, body []byte) {
	s.t.Helper()
	op := ptr("paths", path, strings.ToLower(method))
	if s.at(op) == nil {
		s.t.Errorf("%s: no operation %s %s", s.name, method, path)
		return
	}
	resp := s.deref(op + ptr("responses", fmt.Sprint(status)))
	if s.at(resp) == nil {
		s.t.Errorf("%s: %s %s answered %d, which the document does not list: %s", s.name, method, path, status, body)
		return
	}
	sp := resp + ptr("content", "application/json", "schema")
	if s.at(sp) == nil {
		return
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		s.t.Errorf("%s %s: %d with a body that is not JSON: %q", method, path, status, body)
		return
	}
	if err := s.schema(sp).Validate(v); err != nil {
		s.t.Errorf("%s %s %d: the body does not match %s: %v\n%s", method, path, status, sp, err, body)
	}
}

// checkRefs fails for a $ref that names nothing in the document.
func (s *spec) checkRefs() {
	s.t.Helper()
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !strings.HasPrefix(ref, "#/") || s.at(strings.TrimPrefix(ref, "#")) == nil {
					s.t.Errorf("%s: %s: $ref %q names nothing", s.name, p, ref)
				}
			}
			for k, c := range v {
				walk(p+ptr(k), c)
			}
		case []any:
			for i, c := range v {
				walk(fmt.Sprintf("%s/%d", p, i), c)
			}
		}
	}
	walk("", s.doc)
}

// checkExamples validates every example of a JSON body in the document
// against its schema.
func (s *spec) checkExamples() {
	s.t.Helper()
	n := 0
	var walk func(p string, v any)
	walk = func(p string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if _, has := m["schema"]; has && strings.HasSuffix(p, ptr("application/json")) {
			var examples []any
			if ex, ok := m["example"]; ok {
				examples = append(examples, ex)
			}
			if exs, ok := m["examples"].(map[string]any); ok {
				for _, e := range exs {
					examples = append(examples, e.(map[string]any)["value"])
				}
			}
			for _, ex := range examples {
				n++
				if err := s.schema(p + "/schema").Validate(ex); err != nil {
					s.t.Errorf("%s: example at %s does not match its schema: %v", s.name, p, err)
				}
			}
		}
		for k, c := range m {
			walk(p+ptr(k), c)
		}
	}
	walk("", s.doc)
	if n == 0 {
		s.t.Errorf("%s: no examples checked", s.name)
	}
}

// servedRoutes turns ServeMux patterns into the document's form.
func servedRoutes(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			path, method = p, "GET"
		}
		out = append(out, method+" "+path)
	}
	sort.Strings(out)
	return out
}

func sameRoutes(t *testing.T, what string, served, documented []string) {
	t.Helper()
	in := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	for _, r := range served {
		if !in(documented, r) {
			t.Errorf("%s serves %s, which its document does not describe", what, r)
		}
	}
	for _, r := range documented {
		if !in(served, r) {
			t.Errorf("%s's document describes %s, which it does not serve", what, r)
		}
	}
}

type caller struct {
	t    *testing.T
	base string
	s    *spec
}

// do sends a request, checks the response against the document and returns
// the status and the decoded body.
func (c caller) do(method, route, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	if method == "POST" { // a POST without JSON is refused (415)
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.s.check(method, route, resp.StatusCode, raw)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out
}

func startOTPD(t *testing.T) *otpd.Daemon {
	t.Helper()
	cfg := otpd.NewConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Sim.HTTPAddr = "127.0.0.1:0"
	cfg.Sim.DLRDelay = "10ms"
	d, err := otpd.Start(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d.Shutdown(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Pool().WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

var codeRE = regexp.MustCompile(`\b\d{6}\b`)

// TestOTPDDocument: api/openapi.yaml describes exactly the routes otpd
// serves, its examples match its schemas, and otpd's answers along the
// path of an OTP match the document.
func TestOTPDDocument(t *testing.T) {
	s := load(t, "openapi.yaml", api.OTPD)
	s.checkRefs()
	s.checkExamples()
	d := startOTPD(t)
	sameRoutes(t, "otpd", servedRoutes(d.Routes()), s.operations())

	c := caller{t: t, base: "http://" + d.Addr(), s: s}
	st, created := c.do("POST", "/v1/otp", "/v1/otp", map[string]any{"phone": "+4915112345678"})
	if st != http.StatusCreated {
		t.Fatalf("create: %d %v", st, created)
	}
	id := created["id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := d.Simulator().WaitForMessage(ctx, simulator.Filter{To: "4915112345678"})
	if err != nil {
		t.Fatal(err)
	}
	code := codeRE.FindString(m.Text)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	c.do("POST", "/v1/otp/{id}/verify", "/v1/otp/"+id+"/verify", map[string]any{"code": wrong})
	if st, _ := c.do("POST", "/v1/otp/{id}/verify", "/v1/otp/"+id+"/verify", map[string]any{"code": code}); st != 200 {
		t.Fatalf("verify: %d", st)
	}
	c.do("POST", "/v1/otp/{id}/verify", "/v1/otp/"+id+"/verify", map[string]any{"code": code}) // 409
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, ch := c.do("GET", "/v1/otp/{id}", "/v1/otp/"+id, nil)
		if del, _ := ch["delivery"].(map[string]any); del != nil && del["state"] == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no receipt")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.do("POST", "/v1/otp/{id}/cancel", "/v1/otp/"+id+"/cancel", nil) // 409: approved
	_, other := c.do("POST", "/v1/otp", "/v1/otp", map[string]any{"phone": "+4915112345679"})
	c.do("POST", "/v1/otp/{id}/resend", "/v1/otp/"+other["id"].(string)+"/resend", nil) // 429: cooldown
	c.do("POST", "/v1/otp/{id}/cancel", "/v1/otp/"+other["id"].(string)+"/cancel", nil)
	c.do("GET", "/v1/otp/{id}", "/v1/otp/ch_none", nil) // 404
	c.do("POST", "/v1/otp", "/v1/otp", map[string]any{"phone": "12"})
	_, msg := c.do("POST", "/v1/messages", "/v1/messages", map[string]any{"to": "+4915112345678", "text": "Your parcel arrives today."})
	if msg["id"] == nil {
		t.Fatalf("message: %v", msg)
	}
	c.do("GET", "/v1/messages/{id}", "/v1/messages/"+msg["id"].(string), nil)
	c.do("GET", "/healthz", "/healthz", nil)
	c.do("GET", "/readyz", "/readyz", nil)

	resp, err := http.Get(c.base + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(served, api.OTPD) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/yaml") {
		t.Errorf("GET /openapi.yaml: %d %q, not the document", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestSMSCSimDocument: the same for api/smscsim.yaml and the simulator.
func TestSMSCSimDocument(t *testing.T) {
	s := load(t, "smscsim.yaml", api.SMSCSim)
	s.checkRefs()
	s.checkExamples()
	d := startOTPD(t) // its embedded simulator, with otpd bound to it
	sim := d.Simulator()
	sameRoutes(t, "smscsim", servedRoutes(sim.Routes()), s.operations())

	o := caller{t: t, base: "http://" + d.Addr(), s: load(t, "openapi.yaml", api.OTPD)}
	o.do("POST", "/v1/otp", "/v1/otp", map[string]any{"phone": "+4915112345678"})
	c := caller{t: t, base: "http://" + sim.HTTPAddr(), s: s}
	var list map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, list = c.do("GET", "/api/messages", "/api/messages?to=4915112345678&wait=5s", nil)
		msgs, _ := list["messages"].([]any)
		if len(msgs) == 1 && msgs[0].(map[string]any)["receipt"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message with its receipt: %v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	id := list["messages"].([]any)[0].(map[string]any)["id"].(string)
	c.do("GET", "/api/messages/{id}", "/api/messages/"+id, nil)
	c.do("GET", "/api/messages/{id}", "/api/messages/nope", nil)
	c.do("GET", "/api/messages", "/api/messages?limit=x", nil)
	c.do("GET", "/api/messages", "/api/messages?since=yesterday", nil)
	c.do("GET", "/api/messages/latest", "/api/messages/latest?to=4915112345678", nil)
	c.do("GET", "/api/messages/latest", "/api/messages/latest?to=4915112345678&since="+id, nil) // 404
	c.do("POST", "/api/messages/{id}/receipt", "/api/messages/"+id+"/receipt", map[string]any{"stat": "UNDELIV", "delay": "10ms"})
	c.do("POST", "/api/messages/{id}/receipt", "/api/messages/"+id+"/receipt", map[string]any{"stat": "NOPE"})
	c.do("POST", "/api/messages/{id}/receipt", "/api/messages/nope/receipt", nil)
	c.do("GET", "/api/sessions", "/api/sessions", nil)
	c.do("GET", "/api/faults", "/api/faults", nil)
	c.do("PATCH", "/api/faults", "/api/faults", map[string]any{"disconnect_after": 0})
	c.do("PUT", "/api/faults", "/api/faults", map[string]any{"drop_rate": 2})
	c.do("PUT", "/api/faults", "/api/faults", map[string]any{})
	c.do("POST", "/api/mo", "/api/mo", map[string]any{"from": "+4915112345678", "to": "OTPD", "text": "STOP"})
	c.do("POST", "/api/mo", "/api/mo", map[string]any{"colour": "blue"})
	c.do("DELETE", "/api/messages/{id}", "/api/messages/"+id, nil)
	c.do("DELETE", "/api/messages/{id}", "/api/messages/"+id, nil) // 404
	c.do("DELETE", "/api/messages", "/api/messages?since="+id, nil)
	c.do("DELETE", "/api/messages", "/api/messages", nil)
	c.do("DELETE", "/api/sessions/{id}", "/api/sessions/nope", nil)
	c.do("GET", "/healthz", "/healthz", nil)
	resp, err := http.Get(c.base + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(served, api.SMSCSim) {
		t.Errorf("GET /openapi.yaml: %d, not the document", resp.StatusCode)
	}
}
