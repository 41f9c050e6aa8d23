// Package api holds the OpenAPI 3.1 documents of otpd's and smscsim's
// HTTP APIs, which the servers answer at /openapi.yaml.
package api

import _ "embed"

// OTPD is api/openapi.yaml, otpd's HTTP API.
//
//go:embed openapi.yaml
var OTPD []byte

// SMSCSim is api/smscsim.yaml, the simulator's HTTP API.
//
//go:embed smscsim.yaml
var SMSCSim []byte
