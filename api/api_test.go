package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
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
// operation, the status, the media type and the schema of its body (a JSON
// body as JSON, any other as a string).
func (s *spec) check(method, path string, status int, ctype string, body []byte) {
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
	content, _ := s.at(resp + "/content").(map[string]any)
	if content == nil || len(body) == 0 {
		return
	}
	mt, _, _ := mime.ParseMediaType(ctype)
	if content[mt] == nil {
		s.t.Errorf("%s %s %d: answered %q, which the document does not list: %s", method, path, status, ctype, body)
		return
	}
	sp := resp + ptr("content", mt, "schema")
	if s.at(sp) == nil {
		return
	}
	var v any = string(body)
	if mt == "application/json" {
		var err error
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			s.t.Errorf("%s %s: %d with a body that is not JSON: %q", method, path, status, body)
			return
		}
	}
	if err := s.schema(sp).Validate(v); err != nil {
		s.t.Errorf("%s %s %d: the body does not match %s: %v\n%s", method, path, status, sp, err, body)
	}
}

// checkRequest fails for a request body of a media type the operation
// does not take, or a JSON body its schema does not allow.
func (s *spec) checkRequest(method, path, ctype string, body []byte) {
	s.t.Helper()
	content, _ := s.at(ptr("paths", path, strings.ToLower(method), "requestBody", "content")).(map[string]any)
	mt, _, _ := mime.ParseMediaType(ctype)
	if content[mt] == nil {
		s.t.Errorf("%s: %s %s takes no %q body", s.name, method, path, ctype)
		return
	}
	if mt != "application/json" {
		return
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err == nil {
		err = s.schema(ptr("paths", path, strings.ToLower(method), "requestBody", "content", mt, "schema")).Validate(v)
	}
	if err != nil {
		s.t.Errorf("%s: the request body of %s %s does not match its schema: %v\n%s", s.name, method, path, err, body)
	}
}

// checkCallback validates a request otpd posted to a callback against the
// callback's operation at pointer: its required headers, its media type
// and its body (a form as an object of strings).
func (s *spec) checkCallback(pointer string, r *http.Request, body []byte) {
	s.t.Helper()
	if s.at(pointer) == nil {
		s.t.Errorf("%s: no callback %s", s.name, pointer)
		return
	}
	params, _ := s.at(pointer + "/parameters").([]any)
	for _, p := range params {
		p := p.(map[string]any)
		if p["in"] == "header" && p["required"] == true && r.Header.Get(p["name"].(string)) == "" {
			s.t.Errorf("%s: callback %s came without its header %s", s.name, pointer, p["name"])
		}
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	sp := pointer + ptr("requestBody", "content", mt, "schema")
	if s.at(sp) == nil {
		s.t.Errorf("%s: callback %s came as %q, which the document does not list", s.name, pointer, mt)
		return
	}
	var v any
	switch mt {
	case "application/json":
		var err error
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			s.t.Errorf("callback %s: not JSON: %s", pointer, body)
			return
		}
	case "application/x-www-form-urlencoded":
		f, err := url.ParseQuery(string(body))
		if err != nil {
			s.t.Errorf("callback %s: not a form: %s", pointer, body)
			return
		}
		m := map[string]any{}
		for k := range f {
			m[k] = f.Get(k)
		}
		v = m
	default:
		v = string(body)
	}
	if err := s.schema(sp).Validate(v); err != nil {
		s.t.Errorf("%s: callback %s: the body does not match its schema: %v\n%s", s.name, pointer, err, body)
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

// checkNulls fails for a null outside examples: in YAML's flow style an
// unquoted comma ("{description: a, b}") makes a key with a null value.
func (s *spec) checkNulls() {
	s.t.Helper()
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch v := v.(type) {
		case nil:
			s.t.Errorf("%s: %s is null (an unquoted comma in a flow mapping?)", s.name, p)
		case map[string]any:
			for k, c := range v {
				if k != "example" && k != "examples" {
					walk(p+ptr(k), c)
				}
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

// do sends a request with a JSON body (nil: none), checks the response
// against the document and returns the status and the decoded body.
func (c caller) do(method, route, path string, body any) (int, map[string]any) {
	c.t.Helper()
	var b []byte
	ctype := ""
	if body != nil {
		b, _ = json.Marshal(body)
	}
	if body != nil || method == http.MethodPost { // a POST without JSON is refused (415)
		ctype = "application/json"
	}
	st, raw := c.send(method, route, path, nil, ctype, b)
	var out map[string]any
	json.Unmarshal(raw, &out)
	return st, out
}

// form sends a form body.
func (c caller) form(method, route, path string, hdr map[string]string, f url.Values) (int, []byte) {
	c.t.Helper()
	return c.send(method, route, path, hdr, "application/x-www-form-urlencoded", []byte(f.Encode()))
}

// send makes a request with the headers and a body of ctype (none when
// ctype is ""), checks the response and an accepted request against the
// document and returns the status and the raw body.
func (c caller) send(method, route, path string, hdr map[string]string, ctype string, body []byte) (int, []byte) {
	c.t.Helper()
	var r io.Reader
	if ctype != "" {
		r = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.s.check(method, route, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	// A request the server accepted must be one the document describes; a
	// refused one (a 4xx, a test of bad input) may not be.
	if len(body) > 0 && resp.StatusCode < 400 {
		c.s.checkRequest(method, route, ctype, body)
	}
	return resp.StatusCode, raw
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
	s.checkNulls()
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

// startOTPDWithKey starts otpd with API keys required, on a simulator of
// its own, and returns it with a key made before the start.
func startOTPDWithKey(t *testing.T) (*otpd.Daemon, *simulator.Simulator, string) {
	t.Helper()
	sim, err := simulator.Start(simulator.Config{SMPPAddr: "127.0.0.1:0", DLRDelay: simulator.Delay{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close(context.Background()) }) // after the daemon's
	dir := t.TempDir()
	st, err := otpd.OpenSQLite(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := otpd.CreateKey(context.Background(), st, "doors", "")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	cfg := otpd.NewConfig()
	cfg.DataDir = dir
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.SMSC.Addr, cfg.SMSC.SystemID, cfg.SMSC.SourceAddr = sim.Addr(), "otp", "OTPD"
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
	return d, sim, key
}

// TestOTPDDoorsDocument: the front doors' answers, with keys required,
// match api/openapi.yaml in status, media type and schema.
func TestOTPDDoorsDocument(t *testing.T) {
	s := load(t, "openapi.yaml", api.OTPD)
	d, sim, key := startOTPDWithKey(t)
	c := caller{t: t, base: "http://" + d.Addr(), s: s}
	basic := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("AC0123456789abcdef0123456789abcdef:"+key))}
	wrongBasic := map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("AC0123456789abcdef0123456789abcdef:otpd_wrong"))}
	jsonOf := func(raw []byte) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("not JSON: %s", raw)
		}
		return m
	}

	// Twilio Messages.
	const acc = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef"
	msgs, msg := "/2010-04-01/Accounts/{AccountSid}/Messages.json", "/2010-04-01/Accounts/{AccountSid}/Messages/{file}"
	sms := url.Values{"To": {"+4915112345601"}, "From": {"OTPD"}, "Body": {"Your parcel arrives today."}}
	if st, raw := c.form("POST", msgs, acc+"/Messages.json", nil, sms); st != 401 {
		t.Errorf("Twilio without auth: %d %s", st, raw)
	}
	c.form("POST", msgs, acc+"/Messages.json", wrongBasic, sms)
	st, raw := c.form("POST", msgs, acc+"/Messages.json", basic, sms)
	if st != 201 {
		t.Fatalf("Twilio create: %d %s", st, raw)
	}
	sid := jsonOf(raw)["sid"].(string)
	c.form("POST", msgs, acc+"/Messages.json", basic, url.Values{"Body": {"no number"}})                                            // 400: 21604
	c.form("POST", msgs, acc+"/Messages.json", basic, url.Values{"To": {"12"}, "Body": {"x"}})                                      // 400: 21211
	c.form("POST", msgs, acc+"/Messages.json", basic, url.Values{"To": {"+4915112345601"}, "Body": {"x"}, "ValidityPeriod": {"0"}}) // 400: 21623
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, raw := c.send("GET", msg, acc+"/Messages/"+sid+".json", basic, "", nil)
		if st != 200 {
			t.Fatalf("Twilio get: %d %s", st, raw)
		}
		if jsonOf(raw)["status"] == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Twilio message not delivered: %s", raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.send("GET", msg, acc+"/Messages/SM00000000000000000000000000000000.json", basic, "", nil) // 404
	c.send("GET", msg, acc+"/Messages/"+sid+".json", nil, "", nil)                              // 401
	if st, raw := c.send("GET", msgs, acc+"/Messages.json?PageSize=1", basic, "", nil); st != 200 || len(jsonOf(raw)["messages"].([]any)) != 1 {
		t.Errorf("Twilio list: %d %s", st, raw)
	}
	c.send("GET", msgs, acc+"/Messages.json?PageSize=0", basic, "", nil) // 400

	// Restcomm, in JSON and in XML.
	const rc = "/restcomm/2012-04-24/Accounts/AC0123456789abcdef0123456789abcdef"
	rmsgs := "/restcomm/2012-04-24/Accounts/{AccountSid}/SMS/Messages"
	sms.Set("To", "+4915112345602")
	st, raw = c.form("POST", rmsgs+".json", rc+"/SMS/Messages.json", basic, sms)
	if st != 200 {
		t.Fatalf("Restcomm create: %d %s", st, raw)
	}
	c.send("GET", rmsgs+"/{file}", rc+"/SMS/Messages/"+jsonOf(raw)["sid"].(string)+".json", basic, "", nil)
	c.send("GET", rmsgs+".json", rc+"/SMS/Messages.json", basic, "", nil)
	if st, raw := c.form("POST", rmsgs, rc+"/SMS/Messages", basic, sms); st != 200 || !bytes.Contains(raw, []byte("<RestcommResponse><SMSMessage>")) {
		t.Errorf("Restcomm XML: %d %s", st, raw)
	}
	if st, raw := c.form("POST", rmsgs, rc+"/SMS/Messages", basic, url.Values{"Body": {"no number"}}); st != 400 || !bytes.Contains(raw, []byte("<RestException>")) {
		t.Errorf("Restcomm XML error: %d %s", st, raw)
	}

	// Verify v2: create, a wrong and the right code, get, cancel.
	const svc = "/v2/Services/VA0123456789abcdef0123456789abcdef"
	vs, vsid := "/v2/Services/{ServiceSid}/Verifications", "/v2/Services/{ServiceSid}/Verifications/{Sid}"
	check := "/v2/Services/{ServiceSid}/VerificationCheck"
	st, raw = c.form("POST", vs, svc+"/Verifications", basic, url.Values{"To": {"+4915112345603"}, "Channel": {"sms"}})
	if st != 201 {
		t.Fatalf("Verify create: %d %s", st, raw)
	}
	ve := jsonOf(raw)["sid"].(string)
	c.form("POST", vs, svc+"/Verifications", basic, url.Values{"To": {"+4915112345603"}, "Channel": {"call"}}) // 400
	c.form("POST", vs, svc+"/Verifications", nil, url.Values{"To": {"+4915112345603"}, "Channel": {"sms"}})    // 401
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := sim.WaitForMessage(ctx, simulator.Filter{To: "4915112345603"})
	if err != nil {
		t.Fatal(err)
	}
	code := codeRE.FindString(m.Text)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if st, raw := c.form("POST", check, svc+"/VerificationCheck", basic, url.Values{"To": {"+4915112345603"}, "Code": {wrong}}); st != 200 || jsonOf(raw)["valid"] != false {
		t.Errorf("Verify wrong code: %d %s", st, raw)
	}
	if st, raw := c.form("POST", check, svc+"/VerificationCheck", basic, url.Values{"VerificationSid": {ve}, "Code": {code}}); st != 200 || jsonOf(raw)["status"] != "approved" {
		t.Errorf("Verify code: %d %s", st, raw)
	}
	c.form("POST", check, svc+"/VerificationCheck", basic, url.Values{"VerificationSid": {ve}, "Code": {code}}) // 404: approved
	c.form("POST", check, svc+"/VerificationCheck", basic, url.Values{"To": {"+4915112345603"}})                // 400
	c.send("GET", vsid, svc+"/Verifications/"+ve, basic, "", nil)
	c.send("GET", vsid, svc+"/Verifications/VE00000000000000000000000000000000", basic, "", nil) // 404
	_, raw = c.form("POST", vs, svc+"/Verifications", basic, url.Values{"To": {"+4915112345604"}, "Channel": {"sms"}, "CustomFriendlyName": {"Shop"}})
	other := jsonOf(raw)["sid"].(string)
	c.form("POST", vsid, svc+"/Verifications/"+other, basic, url.Values{"Status": {"approved"}}) // 400
	if st, raw := c.form("POST", vsid, svc+"/Verifications/"+other, basic, url.Values{"Status": {"canceled"}}); st != 200 || jsonOf(raw)["status"] != "canceled" {
		t.Errorf("Verify cancel: %d %s", st, raw)
	}

	// Mosaic.
	apiKey := map[string]string{"X-API-Key": key, "X-Verification-Key": "3f9c0d2e"}
	if st, raw := c.send("GET", "/gateway/mosaic", "/gateway/mosaic", apiKey, "", nil); st != 200 || jsonOf(raw)["key"] != "3f9c0d2e" {
		t.Errorf("Mosaic validation: %d %s", st, raw)
	}
	c.send("GET", "/gateway/mosaic", "/gateway/mosaic", map[string]string{"X-API-Key": "otpd_wrong", "X-Verification-Key": "3f9c0d2e"}, "", nil) // 400
	mosaic := func(hdr map[string]string, body string) (int, []byte) {
		return c.send("POST", "/gateway/mosaic", "/gateway/mosaic", hdr, "application/json", []byte(body))
	}
	if st, raw := mosaic(apiKey, `{"phone_number":"+4915112345605","sender_id":"OTPD","message":"Your code is 123456"}`); st != 200 {
		t.Errorf("Mosaic send: %d %s", st, raw)
	}
	mosaic(apiKey, `{"phone_number":"12","message":"x"}`)          // 400
	mosaic(nil, `{"phone_number":"+4915112345605","message":"x"}`) // 401

	// ExSign.
	token := map[string]string{"Authorization": "token " + base64.StdEncoding.EncodeToString([]byte(key))}
	exsign := func(hdr map[string]string, body string) map[string]any {
		_, raw := c.send("POST", "/gateway/exsign", "/gateway/exsign", hdr, "application/json", []byte(body))
		return jsonOf(raw)
	}
	if a := exsign(token, `{"MobileNumber":"004915112345606","MessageText":"Your code is 123456"}`); a["IsSuccess"] != true {
		t.Errorf("ExSign send: %v", a)
	}
	if a := exsign(map[string]string{"Authorization": "token otpd_wrong"}, `{"MobileNumber":"004915112345606","MessageText":"x"}`); a["IsSuccess"] != false || a["ErrorDetails"] == "" {
		t.Errorf("ExSign with a wrong key: %v", a)
	}

	// The generic HTTP sender.
	bearer := map[string]string{"Authorization": "Bearer " + key}
	if st, raw := c.send("GET", "/gateway/http", "/gateway/http?to=%2B4915112345607&text=Your+code+is+123456", bearer, "", nil); st != 200 || !bytes.HasPrefix(raw, []byte("ID: msg_")) {
		t.Errorf("gateway GET: %d %s", st, raw)
	}
	if st, raw := c.send("GET", "/gateway/http", "/gateway/http?to=%2B4915112345607&text=x", nil, "", nil); st != 401 || !bytes.HasPrefix(raw, []byte("ERR: 001, ")) {
		t.Errorf("gateway without auth: %d %s", st, raw)
	}
	c.send("GET", "/gateway/http", "/gateway/http?to=12&text=x", bearer, "", nil) // 400
	c.form("POST", "/gateway/http", "/gateway/http", basic, url.Values{"phone": {"+4915112345608"}, "message": {"Your code is 123456"}})
	c.send("POST", "/gateway/http", "/gateway/http", bearer, "application/json", []byte(`{"number":"+4915112345609","body":"Your code is 123456"}`))
	c.send("POST", "/gateway/http", "/gateway/http", bearer, "text/csv", []byte("to,text")) // 415; the document lists no text/csv body
	// The webhooks: otpd's own for a /v1 message, Twilio's StatusCallback.
	type hook struct {
		r    *http.Request
		body []byte
	}
	hooks := make(chan hook, 8)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hooks <- hook{r, b}
	}))
	defer srv.Close()
	c.send("POST", "/v1/messages", "/v1/messages", bearer, "application/json",
		[]byte(`{"to":"+4915112345610","text":"Your parcel arrives today.","callback_url":"`+srv.URL+`/otpd"}`))
	c.form("POST", msgs, acc+"/Messages.json", basic, url.Values{"To": {"+4915112345611"}, "Body": {"Your code is 123456"}, "StatusCallback": {srv.URL + "/twilio"}})
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case h := <-hooks:
			switch h.r.URL.Path {
			case "/otpd":
				s.checkCallback(ptr("components", "callbacks", "Delivery", "{$request.body#/callback_url}", "post"), h.r, h.body)
			case "/twilio":
				s.checkCallback(ptr("paths", msgs, "post", "callbacks", "statusCallback", "{$request.body#/StatusCallback}", "post"), h.r, h.body)
			}
			seen[h.r.URL.Path] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("webhooks seen: %v", seen)
		}
	}
}
