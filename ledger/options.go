package ledger

import (
	"fmt"
	"time"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/tokens"
)

// MaxGroups is the most groups a ledger keeps.
const MaxGroups = 8

// Option configures a Ledger.
type Option func(*config)

type config struct {
	period     time.Duration
	retention  time.Duration
	groups     []Group
	prices     *tokens.PriceTable
	indexLimit int
	prefix     string
	now        func() time.Time
}

func defaultConfig() config {
	return config{
		period: 24 * time.Hour,
		groups: []Group{
			{dimensions.APIKey}, {App}, {dimensions.Tenant}, {dimensions.Model},
		},
		indexLimit: 100_000,
		prefix:     "ledger/",
		now:        time.Now,
	}
}

func (c *config) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	maxPeriod := time.Duration(algorithms.MaxPeriod) * time.Microsecond
	if c.period < time.Second || c.period%time.Second != 0 || c.period > maxPeriod/2 {
		return bad("period %s is not a whole number of seconds in [1s, 183d]", c.period)
	}
	slack := min(clockSlack, c.period/2)
	if c.retention == 0 {
		c.retention = min(max(8*c.period, c.period+2*slack), maxPeriod)
	}
	if c.retention%time.Second != 0 || c.retention < c.period+slack || c.retention > maxPeriod {
		return bad("retention %s is not a whole number of seconds in [period + %s, 366d]", c.retention, slack)
	}
	if len(c.groups) == 0 || len(c.groups) > MaxGroups {
		return bad("%d groups, want 1 to %d", len(c.groups), MaxGroups)
	}
	seen := map[string]bool{}
	for _, g := range c.groups {
		if len(g) == 0 {
			return bad("empty group")
		}
		for i, d := range g {
			if d == "" {
				return bad("empty dimension in group %q", g)
			}
			if contains(g[:i], d) {
				return bad("dimension %q twice in group %q", d, g)
			}
		}
		if seen[g.String()] {
			return bad("group %q twice", g)
		}
		seen[g.String()] = true
	}
	if c.prefix == "" {
		return bad("empty key prefix")
	}
	if c.indexLimit < 0 {
		return bad("negative index limit %d", c.indexLimit)
	}
	return nil
}

// WithPeriod sets the length of an accounting period, a whole number of
// seconds from 1s to 183 days, aligned to the Unix epoch (a day starts at
// midnight UTC). The default is 24h.
func WithPeriod(d time.Duration) Option {
	return func(c *config) { c.period = d }
}

// WithRetention sets how long a period's counters are kept, counted from
// a few minutes before the period starts: at least the period plus that
// slack (5 minutes, or half the period when shorter), at most 366 days.
// A reservation settled after its period's counters expired adds nothing.
// The default is 8 periods (at most 366 days).
func WithRetention(d time.Duration) Option {
	return func(c *config) { c.retention = d }
}

// WithGroups sets the groups usage is aggregated by, at most MaxGroups;
// a request is counted once in each group for which it has a value of
// every dimension. The default is {api_key}, {app}, {tenant}, {model}:
// per key, application, team and model. Each group costs one store op
// per request at check time and up to three at settle time.
func WithGroups(groups ...Group) Option {
	return func(c *config) {
		c.groups = make([]Group, len(groups))
		for i, g := range groups {
			c.groups[i] = append(Group(nil), g...)
		}
	}
}

// WithPrices sets the price table that prices settled tokens by the
// request's model when the settled usage carries no cost. The default
// records the settled cost only.
func WithPrices(t *tokens.PriceTable) Option {
	return func(c *config) { c.prices = t }
}

// WithIndexLimit bounds the in-memory index of subjects that Export lists,
// in subjects over all periods; 0 disables the index (Export then lists
// nothing; ExportSubjects still works). The default is 100,000. When the
// index is full, the oldest period is dropped from it; when only the
// current period is left, new subjects are not indexed (IndexDropped
// counts them). Their counters are kept either way.
func WithIndexLimit(n int) Option {
	return func(c *config) { c.indexLimit = n }
}

// WithPrefix sets the prefix of every ledger key in the store; the default
// is "ledger/". It must not be the start of a rule name.
func WithPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

// WithClock makes the ledger read time from now; tests pass a fake clock.
// It decides which period a query's "now" is in and when a period's
// counters have expired. Check-time recording uses the limiter's clock.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}
