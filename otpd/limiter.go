package otpd

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// limiter is a set of token buckets by key: N events per window, with a
// burst of N. Idle buckets are dropped so the map stays bounded by the
// number of keys active within a window.
//
// On a shared store (PostgreSQL) the buckets live in the database instead,
// so that the limits hold across every instance (shared names the bucket
// family there); an instance's own buckets would let N instances send N
// times the limit.
type limiter struct {
	r     Rate
	mu    sync.Mutex
	m     map[string]*bucket
	sweep time.Time

	shared *Store
	name   string
}

type bucket struct {
	l    *rate.Limiter
	last time.Time
}

func newLimiter(r Rate) *limiter {
	return &limiter{r: r, m: map[string]*bucket{}}
}

// take takes one token for key. When none is left it returns ok false and
// how long until one is. refund gives the token back (nil when the limit is
// off).
func (l *limiter) take(ctx context.Context, key string, now time.Time) (refund func(), ok bool, wait time.Duration, err error) {
	if l == nil || l.r.N == 0 {
		return nil, true, 0, nil
	}
	if l.shared != nil {
		return l.takeShared(ctx, key, now)
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
		b = &bucket{l: rate.NewLimiter(rate.Limit(l.perSecond()), l.r.N)}
		l.m[key] = b
	}
	b.last = now
	res := b.l.ReserveN(now, 1)
	if !res.OK() {
		return nil, false, l.r.Per, nil
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return nil, false, d, nil
	}
	return func() { res.CancelAt(now) }, true, 0, nil
}

func (l *limiter) perSecond() float64 { return float64(l.r.N) / l.r.Per.Seconds() }

// takeShared takes the token from the store's bucket.
func (l *limiter) takeShared(ctx context.Context, key string, now time.Time) (refund func(), ok bool, wait time.Duration, err error) {
	ok, left, err := l.shared.takeToken(ctx, l.name, key, l.perSecond(), l.r.N, ms(now))
	if err != nil || !ok {
		if err == nil {
			wait = time.Duration((1 - left) / l.perSecond() * float64(time.Second))
			wait = max(wait, time.Second)
		}
		return nil, false, wait, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.shared.giveToken(ctx, l.name, key, l.r.N)
	}, true, 0, nil
}
