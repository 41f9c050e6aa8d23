package otpd

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Twilio Verify v2 on otpd's own challenges: a Verification is a
// challenge (sid VE + its id's 128 bits in hex), a VerificationCheck is a
// verify, with the same HMAC storage, attempt limits and expiry.

// verifyFromAPI maps the service's errors onto Verify's codes.
func verifyFromAPI(err error, param string) *twilioError {
	var e *APIError
	if !errors.As(err, &e) {
		return twilioFromAPI(err)
	}
	var t *twilioError
	switch e.Code {
	case "invalid_phone", "country_not_allowed":
		t = twErr(http.StatusBadRequest, 60200, "Invalid parameter `To`: %s", e.Message)
	case "invalid_length":
		t = twErr(http.StatusBadRequest, 60200, "Invalid parameter `CodeLength`: %s", e.Message)
	case "invalid_code":
		t = twErr(http.StatusBadRequest, 60200, "Invalid parameter `Code`: %s", e.Message)
	case "invalid_template", "invalid_text":
		t = twErr(http.StatusBadRequest, 60200, "Invalid parameter `CustomFriendlyName`: %s", e.Message)
	case "max_attempts_reached":
		t = twErr(http.StatusTooManyRequests, 60202, "Max check attempts reached")
	case "max_sends_reached":
		t = twErr(http.StatusTooManyRequests, 60203, "Max send attempts reached")
	case "not_found", "not_pending", "expired":
		t = twErr(http.StatusNotFound, 20404, "The requested resource was not found")
	case "resend_cooldown":
		t = twErr(http.StatusTooManyRequests, 20429, "Too Many Requests: %s", e.Message)
	default:
		return twilioFromAPI(err)
	}
	t.retryAfter = e.RetryAfter
	return t
}

type verifyAttempt struct {
	AttemptSid string `json:"attempt_sid"`
	Channel    string `json:"channel"`
	Time       string `json:"time"`
}

// verification is Verify's Verification resource.
type verification struct {
	Sid              string          `json:"sid"`
	ServiceSid       string          `json:"service_sid"`
	AccountSid       string          `json:"account_sid"`
	To               string          `json:"to"`
	Channel          string          `json:"channel"`
	Status           string          `json:"status"`
	Valid            bool            `json:"valid"`
	Lookup           map[string]any  `json:"lookup"`
	Amount           *string         `json:"amount"`
	Payee            *string         `json:"payee"`
	SendCodeAttempts []verifyAttempt `json:"send_code_attempts"`
	DateCreated      string          `json:"date_created"`
	DateUpdated      string          `json:"date_updated"`
	Sna              map[string]any  `json:"sna"`
	URL              string          `json:"url"`
}

// verificationCheck is Verify's VerificationCheck resource.
type verificationCheck struct {
	Sid                   string  `json:"sid"`
	ServiceSid            string  `json:"service_sid"`
	AccountSid            string  `json:"account_sid"`
	To                    string  `json:"to"`
	Channel               string  `json:"channel"`
	Status                string  `json:"status"`
	Valid                 bool    `json:"valid"`
	Amount                *string `json:"amount"`
	Payee                 *string `json:"payee"`
	DateCreated           string  `json:"date_created"`
	DateUpdated           string  `json:"date_updated"`
	SnaAttemptsErrorCodes []any   `json:"sna_attempts_error_codes"`
}

const iso8601 = "2006-01-02T15:04:05Z"

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (a *API) verificationView(r *http.Request, service, account string, c *Challenge) verification {
	sid := sidFromID("VE", c.ID)
	v := verification{Sid: sid, ServiceSid: service, AccountSid: account, To: c.Phone, Channel: "sms", Status: c.effectiveStatus(a.svc.now()),
		Lookup: map[string]any{"carrier": nil}, DateCreated: c.CreatedAt.UTC().Format(iso8601), DateUpdated: c.UpdatedAt.UTC().Format(iso8601),
		URL: baseURL(r) + "/v2/Services/" + service + "/Verifications/" + sid, SendCodeAttempts: []verifyAttempt{}}
	v.Valid = v.Status == StatusApproved
	for i := 0; i < c.Sends; i++ {
		t := c.CreatedAt
		if i == c.Sends-1 {
			t = c.LastSentAt // the times between are not kept
		}
		v.SendCodeAttempts = append(v.SendCodeAttempts, verifyAttempt{AttemptSid: "VL" + sid[2:24] + strings.Repeat("0", 8) + strconv.FormatInt(int64(10+i), 16),
			Channel: "sms", Time: t.UTC().Format(iso8601)})
	}
	return v
}

func (a *API) registerVerify() {
	a.door("POST /v2/Services/{ServiceSid}/Verifications", a.verifyCreate)
	a.door("POST /v2/Services/{ServiceSid}/VerificationCheck", a.verifyCheck)
	a.door("GET /v2/Services/{ServiceSid}/Verifications/{Sid}", a.verifyGet)
	a.door("POST /v2/Services/{ServiceSid}/Verifications/{Sid}", a.verifyUpdate)
}

// verifyAuth is twilioAuth that also reads the form; account is the
// basic-auth user, which Twilio's resources echo as account_sid.
func (a *API) verifyAuth(w http.ResponseWriter, r *http.Request) (key *APIKey, account string, ok bool) {
	key, _, err := a.twilioAuth(r)
	if err != nil {
		writeTwilioError(w, err)
		return nil, "", false
	}
	if _, err := a.svc.access(r.Context(), keyID(key), ScopeOTP); err != nil {
		writeTwilioError(w, err)
		return nil, "", false
	}
	if err := a.twilioForm(w, r); err != nil {
		writeTwilioError(w, err)
		return nil, "", false
	}
	account, _, _ = r.BasicAuth()
	return key, account, true
}

// friendlyTemplate is Twilio's default text with the service's name.
func friendlyTemplate(name string) string {
	name = strings.Map(func(r rune) rune {
		if r == '{' || r == '}' || r < 0x20 {
			return -1
		}
		return r
	}, strings.TrimSpace(name))
	if name == "" {
		return ""
	}
	if len(name) > 30 {
		name = name[:30]
	}
	return "Your " + name + " verification code is: {otp}"
}

func (a *API) verifyCreate(w http.ResponseWriter, r *http.Request) {
	key, account, ok := a.verifyAuth(w, r)
	if !ok {
		return
	}
	service := r.PathValue("ServiceSid")
	f := r.PostForm
	to, channel := strings.TrimSpace(f.Get("To")), f.Get("Channel")
	if to == "" {
		writeTwilioError(w, twErr(http.StatusBadRequest, 60200, "Invalid parameter `To`: required"))
		return
	}
	if channel != "sms" {
		writeTwilioError(w, twErr(http.StatusBadRequest, 60200, "Invalid parameter `Channel`: otpd sends only sms"))
		return
	}
	p, err := a.svc.parsePhone(to)
	if err != nil {
		writeTwilioError(w, verifyFromAPI(err, "To"))
		return
	}
	if err := a.unavailable(); err != nil {
		writeTwilioError(w, err)
		return
	}
	kid := keyID(key)
	// A pending verification of this service and number gets another
	// code, as Twilio's does (send_code_attempts grows).
	if id, err := a.svc.store.latestVerifyChallenge(r.Context(), service, kid, p.E164); err != nil {
		writeTwilioError(w, err)
		return
	} else if id != "" {
		if c, _, err := a.svc.GetChallenge(r.Context(), id, kid); err == nil && c.effectiveStatus(a.svc.now()) == StatusPending {
			c, err := a.svc.Resend(r.Context(), id, kid)
			if err != nil {
				writeTwilioError(w, verifyFromAPI(err, ""))
				return
			}
			writeJSON(w, http.StatusCreated, a.verificationView(r, service, account, c))
			return
		}
	}
	req := CreateRequest{Phone: p.E164, Locale: f.Get("Locale"), Template: friendlyTemplate(f.Get("CustomFriendlyName"))}
	if req.Locale != "" {
		if _, err := a.svc.template(CreateRequest{Locale: req.Locale}); err != nil {
			req.Locale = "" // a locale otpd has no text for reads in its default
		}
	}
	if v := f.Get("CodeLength"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeTwilioError(w, twErr(http.StatusBadRequest, 60200, "Invalid parameter `CodeLength`: not a number"))
			return
		}
		req.Length = n
	}
	req.after.add(func(tx *Tx, challengeID string, m *Message) error {
		return insertVerifyChallenge(tx, challengeID, service, kid, p.E164, m.CreatedAt)
	})
	c, err := a.svc.Create(r.Context(), req, kid)
	if err != nil {
		writeTwilioError(w, verifyFromAPI(err, ""))
		return
	}
	writeJSON(w, http.StatusCreated, a.verificationView(r, service, account, c))
}

// verifyFind is the challenge of a Verification sid within a service.
func (a *API) verifyFind(r *http.Request, service, sid, kid string) (*Challenge, error) {
	id := idFromSid("VE", "ch", sid)
	if id == "" {
		return nil, twErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path)
	}
	svc, err := a.svc.store.verifyChallengeService(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if svc != service {
		return nil, twErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path)
	}
	c, _, err := a.svc.GetChallenge(r.Context(), id, kid)
	if err != nil {
		return nil, verifyFromAPI(err, "")
	}
	return c, nil
}

func (a *API) verifyCheck(w http.ResponseWriter, r *http.Request) {
	key, account, ok := a.verifyAuth(w, r)
	if !ok {
		return
	}
	service, kid := r.PathValue("ServiceSid"), keyID(key)
	f := r.PostForm
	code := strings.TrimSpace(f.Get("Code"))
	if code == "" {
		writeTwilioError(w, twErr(http.StatusBadRequest, 60200, "Invalid parameter `Code`: required"))
		return
	}
	sid := f.Get("VerificationSid")
	if sid == "" {
		to := strings.TrimSpace(f.Get("To"))
		if to == "" {
			writeTwilioError(w, twErr(http.StatusBadRequest, 60200, "Invalid parameter: either `To` or `VerificationSid` is required"))
			return
		}
		p, err := a.svc.parsePhone(to)
		if err != nil {
			writeTwilioError(w, verifyFromAPI(err, "To"))
			return
		}
		id, err := a.svc.store.latestVerifyChallenge(r.Context(), service, kid, p.E164)
		if err != nil {
			writeTwilioError(w, err)
			return
		}
		if id == "" {
			writeTwilioError(w, twErr(http.StatusNotFound, 20404, "The requested resource %s was not found", r.URL.Path))
			return
		}
		sid = sidFromID("VE", id)
	}
	c, err := a.verifyFind(r, service, sid, kid)
	if err != nil {
		writeTwilioError(w, err)
		return
	}
	res, err := a.svc.Verify(r.Context(), c.ID, code, kid)
	if err != nil {
		writeTwilioError(w, verifyFromAPI(err, "Code"))
		return
	}
	now := a.svc.now().UTC()
	writeJSON(w, http.StatusOK, verificationCheck{Sid: sid, ServiceSid: service, AccountSid: account, To: c.Phone, Channel: "sms",
		Status: res.Status, Valid: res.Status == StatusApproved, DateCreated: c.CreatedAt.UTC().Format(iso8601),
		DateUpdated: now.Format(iso8601), SnaAttemptsErrorCodes: []any{}})
}

func (a *API) verifyGet(w http.ResponseWriter, r *http.Request) {
	key, _, err := a.twilioAuth(r)
	if err != nil {
		writeTwilioError(w, err)
		return
	}
	if _, err := a.svc.access(r.Context(), keyID(key), ScopeOTP); err != nil {
		writeTwilioError(w, err)
		return
	}
	account, _, _ := r.BasicAuth()
	service := r.PathValue("ServiceSid")
	c, err := a.verifyFind(r, service, r.PathValue("Sid"), keyID(key))
	if err != nil {
		writeTwilioError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a.verificationView(r, service, account, c))
}

func (a *API) verifyUpdate(w http.ResponseWriter, r *http.Request) {
	key, account, ok := a.verifyAuth(w, r)
	if !ok {
		return
	}
	if st := r.PostForm.Get("Status"); st != StatusCanceled {
		writeTwilioError(w, twErr(http.StatusBadRequest, 60200, "Invalid parameter `Status`: otpd accepts only canceled"))
		return
	}
	service, kid := r.PathValue("ServiceSid"), keyID(key)
	c, err := a.verifyFind(r, service, r.PathValue("Sid"), kid)
	if err != nil {
		writeTwilioError(w, err)
		return
	}
	if c, err = a.svc.Cancel(r.Context(), c.ID, kid); err != nil {
		writeTwilioError(w, verifyFromAPI(err, ""))
		return
	}
	c.UpdatedAt = time.Now().UTC()
	writeJSON(w, http.StatusOK, a.verificationView(r, service, account, c))
}
