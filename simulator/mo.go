package simulator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"

	"github.com/otpd/otpd/smpp"
	"github.com/otpd/otpd/smpp/coding"
)

// Errors of InjectMO.
var (
	// ErrNoReceiver: no receiver or transceiver of the system_id is bound.
	ErrNoReceiver = errors.New("simulator: no receiver bound")
	// ErrInvalidMO: the message lacks an address or does not fit.
	ErrInvalidMO = errors.New("simulator: invalid mobile-originated message")
)

// InjectMO sends a mobile-originated deliver_sm from mo.From to mo.To on a
// bound receiver (or transceiver) of mo.SystemID, and waits for its
// deliver_sm_resp. With mo.SystemID empty, the one system_id with a
// receiver bound is used. The text goes in GSM 03.38 when it fits, else
// UCS-2, in segments with a concatenation UDH when too long for one.
func (sim *Simulator) InjectMO(ctx context.Context, mo MO) error {
	_, err := sim.injectMO(ctx, mo)
	return err
}

func (sim *Simulator) injectMO(ctx context.Context, mo MO) (int, error) {
	if mo.From == "" || mo.To == "" {
		return 0, fmt.Errorf("%w: from and to are required", ErrInvalidMO)
	}
	sys := mo.SystemID
	sim.smu.RLock()
	if sys == "" && len(sim.rx) == 1 {
		for k := range sim.rx {
			sys = k
		}
	}
	var target *sess
	for _, ss := range sim.rx[sys] {
		if ss.s.Bound() {
			target = ss
			break
		}
	}
	n := len(sim.rx)
	sim.smu.RUnlock()
	if target == nil {
		if mo.SystemID == "" && n > 1 {
			return 0, fmt.Errorf("%w: receivers of %d system_ids are bound; say which in system_id", ErrNoReceiver, n)
		}
		return 0, fmt.Errorf("%w for system_id %q", ErrNoReceiver, sys)
	}
	tmpl := &smpp.SubmitSM{}
	var err1, err2 error
	tmpl.SourceAddrTON, tmpl.SourceAddrNPI, tmpl.SourceAddr, err1 = address(mo.From)
	tmpl.DestAddrTON, tmpl.DestAddrNPI, tmpl.DestinationAddr, err2 = address(mo.To)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidMO, err)
	}
	parts, err := smpp.SplitSubmit(tmpl, mo.Text, coding.SplitOptions{Auto: true, UTF16: true, Ref: uint16(sim.num.Load())})
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrInvalidMO, err)
	}
	for _, p := range parts {
		if _, err := target.s.Deliver(ctx, (*smpp.DeliverSM)(p)); err != nil {
			return 0, fmt.Errorf("simulator: mobile-originated deliver_sm to %q: %w", sys, err)
		}
	}
	target.moSent.Add(1)
	sim.metrics.mo.Inc()
	sim.log.Debug("smscsim: mobile-originated message delivered", zap.String("system_id", sys), zap.Int("parts", len(parts)))
	return len(parts), nil
}

// address reads "+4915..." (international), digits (unknown TON, ISDN) or
// an alphanumeric sender.
func address(a string) (ton, npi byte, addr string, err error) {
	a = strings.TrimSpace(a)
	digits := strings.TrimPrefix(a, "+")
	isNum := digits != ""
	for _, c := range digits {
		if c < '0' || c > '9' {
			isNum = false
			break
		}
	}
	switch {
	case isNum && strings.HasPrefix(a, "+"):
		ton, npi, addr = smpp.TONInternational, smpp.NPIISDN, digits
	case isNum:
		ton, npi, addr = smpp.TONUnknown, smpp.NPIISDN, digits
	default:
		ton, npi, addr = smpp.TONAlphanumeric, smpp.NPIUnknown, a
	}
	if len(addr) > smpp.MaxAddr-1 {
		return 0, 0, "", fmt.Errorf("address %q: longer than %d characters", a, smpp.MaxAddr-1)
	}
	return ton, npi, addr, nil
}
