package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/tokens"
)

// Errors the ledger reports.
var (
	// ErrInvalidConfig is returned by New for options it cannot use.
	ErrInvalidConfig = errors.New("ledger: invalid configuration")
	// ErrUnknownGroup is returned for a group the ledger does not keep.
	ErrUnknownGroup = errors.New("ledger: unknown group")
	// ErrMissingDimension is returned for a subject that lacks a value of
	// one of its group's dimensions.
	ErrMissingDimension = errors.New("ledger: missing dimension value")
)

// App is the custom dimension (a key of dimensions.Facts.Custom) that
// names the calling application.
const App dimensions.Dimension = "app"

// clockSlack is how long before its period a period's counters already
// exist, so that a store whose clock is a little behind the gateway's
// (Redis TIME) still writes into the right window.
const clockSlack = 5 * time.Minute

// metric names one counter of a subject; its byte is part of the key.
type metric uint8

const (
	mRequests metric = iota
	mDenials
	mInput
	mOutput
	mCost
	nMetrics
)

var metricBytes = [nMetrics]byte{'r', 'd', 'i', 'o', 'c'}

// Usage is what one subject used in one period. Every field counts from 0
// and saturates at algorithms.MaxLimit.
type Usage struct {
	// Requests is the number of admitted requests.
	Requests int64 `json:"requests"`
	// Denials is the number of denied requests.
	Denials int64 `json:"denials"`
	// InputTokens and OutputTokens are the tokens settled.
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// Cost is money in integer micro-units of the price table's currency.
	Cost int64 `json:"cost"`
}

func (u *Usage) set(m metric, v int64) {
	switch m {
	case mRequests:
		u.Requests = v
	case mDenials:
		u.Denials = v
	case mInput:
		u.InputTokens = v
	case mOutput:
		u.OutputTokens = v
	default:
		u.Cost = v
	}
}

// Group is a list of dimensions usage is aggregated by, such as
// {api_key} or {tenant, model}.
type Group []dimensions.Dimension

// String returns the group's name: its dimensions joined by "+", as
// "tenant+model".
func (g Group) String() string {
	var b strings.Builder
	for i, d := range g {
		if i > 0 {
			b.WriteByte('+')
		}
		b.WriteString(string(d))
	}
	return b.String()
}

// ParseGroup returns the group named s (see Group.String).
func ParseGroup(s string) Group {
	var g Group
	for d := range strings.SplitSeq(s, "+") {
		g = append(g, dimensions.Dimension(d))
	}
	return g
}

// Subject names the counters of one group for one combination of values.
type Subject struct {
	// Group is one of the ledger's groups.
	Group Group
	// Facts holds a value for every dimension of Group; other values are
	// ignored. An API key may be given as exports show it ("#" and 32 hex
	// digits of its SHA-256), so that an exported row can be queried.
	Facts dimensions.Facts
}

// Ledger keeps usage accounts in a store: per subject of each of its groups
// and per period, the requests admitted and denied, the tokens and the
// cost. It is a limiter.Recorder: pass it to limiter.WithRecorder, and the
// limiter updates the accounts inside the store calls it makes anyway.
// A Ledger is safe for concurrent use.
type Ledger struct {
	store  store.Store
	peek   func(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error
	cfg    config
	base   string // prefix "<period s>.<retention s>/"
	period int64  // µs
	retain int64  // µs: the window of a period's counters
	slack  int64  // µs
	groups []Group
	dims   []dimensions.Dimension // every dimension of the groups, in order
	index  *index
}

var _ limiter.Recorder = (*Ledger)(nil)

// New returns a ledger that keeps its counters in s, which should be the
// limiter's store.
func New(s store.Store, opts ...Option) (*Ledger, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: nil store", ErrInvalidConfig)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	l := &Ledger{
		store:  s,
		cfg:    cfg,
		period: cfg.period.Microseconds(),
		retain: cfg.retention.Microseconds(),
		slack:  min(clockSlack, cfg.period/2).Microseconds(),
		groups: cfg.groups,
	}
	l.base = cfg.prefix + strconv.FormatInt(int64(cfg.period/time.Second), 10) + "." +
		strconv.FormatInt(int64(cfg.retention/time.Second), 10) + "/"
	for _, g := range l.groups {
		for _, d := range g {
			if !contains(l.dims, d) {
				l.dims = append(l.dims, d)
			}
		}
	}
	if p, ok := s.(interface {
		Peek(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error
	}); ok {
		l.peek = p.Peek
	} else {
		l.peek = s.Apply // ops with cost 0 peek
	}
	if cfg.indexLimit > 0 {
		l.index = newIndex(cfg.indexLimit)
	}
	return l, nil
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Groups returns the groups the ledger keeps, in order.
func (l *Ledger) Groups() []Group {
	out := make([]Group, len(l.groups))
	for i, g := range l.groups {
		out[i] = append(Group(nil), g...)
	}
	return out
}

// Period returns the start of the period holding t. Periods are aligned to
// the Unix epoch (days start at midnight UTC).
func (l *Ledger) Period(t time.Time) time.Time {
	return time.UnixMicro(l.periodStart(t.UnixMicro())).UTC()
}

// PeriodLength returns the length of a period.
func (l *Ledger) PeriodLength() time.Duration { return l.cfg.period }

// IndexDropped returns how many subjects were left out of the export
// index because it was full (see WithIndexLimit). Their counters are kept
// and can be queried; only Export does not list them.
func (l *Ledger) IndexDropped() uint64 {
	if l.index == nil {
		return 0
	}
	return l.index.dropped.Load()
}

func (l *Ledger) periodStart(us int64) int64 {
	r := us % l.period
	if r < 0 {
		r += l.period
	}
	return us - r
}

// params returns the parameters of every counter of the period starting at
// p: a fixed window from p - slack, retention long, that never denies.
func (l *Ledger) params(p int64) algorithms.Params {
	off := (p - l.slack) % l.retain
	if off < 0 {
		off += l.retain
	}
	return algorithms.Params{Kind: algorithms.FixedWindow, Limit: algorithms.MaxLimit, Period: l.retain, Offset: off}
}

// live reports whether the counters of the period starting at p still
// exist at now (µs).
func (l *Ledger) live(p, now int64) bool {
	return now < p-l.slack+l.retain
}

// appendHead appends the key of metric m of the period starting at p, up to
// the subject's dimensions.
func (l *Ledger) appendHead(dst []byte, p int64, m metric) []byte {
	dst = append(dst, l.base...)
	dst = strconv.AppendInt(dst, p/1_000_000, 10)
	return append(dst, '/', metricBytes[m])
}

// groupOf returns the index of g among the ledger's groups.
func (l *Ledger) groupOf(g Group) (int, error) {
	for i, h := range l.groups {
		if slicesEqual(g, h) {
			return i, nil
		}
	}
	return -1, fmt.Errorf("%w %q", ErrUnknownGroup, g.String())
}

func slicesEqual(a, b Group) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// tail returns the dimension part of a subject's keys, or an error when
// the subject's group is unknown or lacks a value.
func (l *Ledger) tail(s *Subject) (string, error) {
	if _, err := l.groupOf(s.Group); err != nil {
		return "", err
	}
	for _, d := range s.Group {
		if _, ok := s.Facts.Get(d); !ok {
			return "", fmt.Errorf("%w: %s", ErrMissingDimension, d)
		}
	}
	if h, ok := hashedKey(s.Facts.APIKey); ok && contains(s.Group, dimensions.APIKey) {
		// The key as exports show it: use the hash as it is.
		f := s.Facts
		f.APIKey = ""
		var b []byte
		for _, d := range s.Group {
			b = append(b, '|')
			b = dimensions.AppendValue(b, "", string(d))
			b = append(b, '=')
			if d == dimensions.APIKey {
				b = append(b, h...)
				continue
			}
			v, _ := f.Get(d)
			b = dimensions.AppendValue(b, d, v)
		}
		return string(b), nil
	}
	return string(dimensions.AppendKey(nil, "", s.Group, &s.Facts)), nil
}

// hashedKey reports whether v is an API key as exports show it: "#" and
// 32 lower-case hex digits.
func hashedKey(v string) (string, bool) {
	if len(v) != 33 || v[0] != '#' {
		return "", false
	}
	for i := 1; i < len(v); i++ {
		if c := v[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", false
		}
	}
	return v, true
}

// recording is the Recording of one request: its period, its model (for
// pricing) and the keys of every counter of its subjects, nMetrics per
// subject, concatenated.
type recording struct {
	period int64
	model  string
	keys   string
	ends   []int32
}

func (r *recording) key(subject int, m metric) string {
	i := subject*int(nMetrics) + int(m)
	start := int32(0)
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.keys[start:r.ends[i]]
}

func (r *recording) subjects() int { return len(r.ends) / int(nMetrics) }

// Record records req's subjects for the period holding now (µs): it is the
// limiter.Recorder method the limiter calls once per check. It returns nil
// when req belongs to no subject.
func (l *Ledger) Record(req *limiter.Request, now int64) limiter.Recording {
	p := l.periodStart(now)
	var tails [8]int // end of each subject's tail in buf, then its group
	var groups [8]int
	n := 0
	var stack [512]byte
	buf := stack[:0]
	for gi, g := range l.groups {
		if n == len(tails) {
			break
		}
		ok := true
		for _, d := range g {
			if _, has := req.Get(d); !has {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		buf = dimensions.AppendKey(buf, "", g, &req.Facts)
		tails[n], groups[n] = len(buf), gi
		n++
	}
	if n == 0 {
		return nil
	}
	headLen := len(l.appendHead(nil, p, 0))
	keys := make([]byte, 0, n*int(nMetrics)*headLen+int(nMetrics)*len(buf))
	rec := &recording{period: p, model: req.Model, ends: make([]int32, 0, n*int(nMetrics))}
	start := 0
	for s := range n {
		tail := buf[start:tails[s]]
		if l.index != nil {
			l.index.add(p, groups[s], tail, l.indexFloor(now))
		}
		for m := range nMetrics {
			keys = l.appendHead(keys, p, m)
			keys = append(keys, tail...)
			rec.ends = append(rec.ends, int32(len(keys)))
		}
		start = tails[s]
	}
	rec.keys = unsafe.String(unsafe.SliceData(keys), len(keys)) // keys is never written again
	return rec
}

// indexFloor is the oldest period start whose counters still exist at now.
func (l *Ledger) indexFloor(now int64) int64 {
	return now + l.slack - l.retain
}

func (l *Ledger) appendOps(ops []store.Op, rec limiter.Recording, m metric, cost int64) []store.Op {
	r, ok := rec.(*recording)
	if !ok || r == nil || cost <= 0 {
		return ops
	}
	params := l.params(r.period)
	for s := range r.subjects() {
		ops = append(ops, store.Op{Key: r.key(s, m), Params: params, Cost: cost, Mode: algorithms.Force})
	}
	return ops
}

// AppendRequest appends the ops that count rec as an admitted request
// (limiter.Recorder).
func (l *Ledger) AppendRequest(ops []store.Op, rec limiter.Recording) []store.Op {
	return l.appendOps(ops, rec, mRequests, 1)
}

// AppendDenial appends the ops that count rec as a denied request
// (limiter.Recorder).
func (l *Ledger) AppendDenial(ops []store.Op, rec limiter.Recording) []store.Op {
	return l.appendOps(ops, rec, mDenials, 1)
}

// AppendUsage appends the ops that add actual to rec's accounts
// (limiter.Recorder). The cost is actual.Cost, or, when that is 0 and the
// ledger has a price table (WithPrices), the price of the tokens for the
// request's model. Nothing is appended once the period's counters have
// expired (a reservation settled after the retention).
func (l *Ledger) AppendUsage(ops []store.Op, rec limiter.Recording, actual limiter.Usage) []store.Op {
	r, ok := rec.(*recording)
	if !ok || r == nil || !l.live(r.period, l.cfg.now().UnixMicro()) {
		return ops
	}
	cost := actual.Cost
	if cost == 0 && l.cfg.prices != nil && r.model != "" {
		if c, err := l.cfg.prices.Cost(r.model, tokens.Usage{Input: actual.InputTokens, Output: actual.OutputTokens}); err == nil {
			cost = c
		}
	}
	ops = slices.Grow(ops, 3*r.subjects())
	ops = l.appendOps(ops, rec, mInput, actual.InputTokens)
	ops = l.appendOps(ops, rec, mOutput, actual.OutputTokens)
	return l.appendOps(ops, rec, mCost, cost)
}

// Usage returns the usage of subject s in the period holding t, in one
// store call.
func (l *Ledger) Usage(ctx context.Context, t time.Time, s Subject) (Usage, error) {
	tail, err := l.tail(&s)
	if err != nil {
		return Usage{}, err
	}
	var out [1]Usage
	err = l.read(ctx, l.periodStart(t.UnixMicro()), []string{tail}, out[:])
	return out[0], err
}

// read fills out[i] with the usage of the subject whose key tail is
// tails[i] in the period starting at p, in one store call.
func (l *Ledger) read(ctx context.Context, p int64, tails []string, out []Usage) error {
	params := l.params(p)
	ops := make([]store.Op, 0, len(tails)*int(nMetrics))
	var head []byte
	for _, t := range tails {
		for m := range nMetrics {
			head = l.appendHead(head[:0], p, m)
			ops = append(ops, store.Op{Key: string(head) + t, Params: params})
		}
	}
	results := make([]algorithms.Result, len(ops))
	if err := l.peek(ctx, l.cfg.now().UnixMicro(), ops, results); err != nil {
		return fmt.Errorf("ledger: reading usage: %w", err)
	}
	for i := range tails {
		out[i] = Usage{}
		for m := range nMetrics {
			out[i].set(m, algorithms.MaxLimit-results[i*int(nMetrics)+int(m)].Remaining)
		}
	}
	return nil
}

// Ping reports whether the store answers: it reads one ledger counter.
func (l *Ledger) Ping(ctx context.Context) error {
	ops := []store.Op{{Key: l.base + "ping", Params: l.params(0)}}
	var res [1]algorithms.Result
	if err := l.peek(ctx, l.cfg.now().UnixMicro(), ops, res[:]); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}
