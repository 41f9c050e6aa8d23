package otpd

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a set of token buckets by key: N events per window, with a
// burst of N. Idle buckets are dropped so the map stays bounded by the
// number of keys active within a window.
type limiter struct {
	r     Rate
	mu    sync.Mutex
	m     map[string]*bucket
	sweep time.Time
}

type bucket struct {
	l    *rate.Limiter
	last time.Time
}

func newLimiter(r Rate) *limiter {
	return &limiter{r: r, m: map[string]*bucket{}}
}

// take takes one token for key. When none is left it returns ok false and
// how long until one is. A token taken can be given back with
// reservation.CancelAt (nil when the limit is off).
func (l *limiter) take(key string, now time.Time) (res *rate.Reservation, ok bool, wait time.Duration) {
	if l == nil || l.r.N == 0 {
		return nil, true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > l.r.Per {
		for k, b := range l.m {
			if now.Sub(b.last) > l.r.Per {
				delete(l.m, k)
			}
		}
		l.sweep = now
	}
	b := l.m[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(rate.Limit(float64(l.r.N)/l.r.Per.Seconds()), l.r.N)}
		l.m[key] = b
	}
	b.last = now
	res = b.l.ReserveN(now, 1)
	if !res.OK() {
		return nil, false, l.r.Per
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return nil, false, d
	}
	return res, true, 0
}
