package ledger_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/ledger"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store"
	"github.com/tollgate-go/tollgate/store/memory"
	"github.com/tollgate-go/tollgate/store/redis"
	"github.com/tollgate-go/tollgate/store/redis/redistest"
	"github.com/tollgate-go/tollgate/tokens"
)

// countingStore counts Apply calls and keeps a copy of every batch.
type countingStore struct {
	store.Store
	mu      sync.Mutex
	batches [][]store.Op
	fail    error
}

func (c *countingStore) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	c.mu.Lock()
	b := make([]store.Op, len(ops))
	for i, op := range ops {
		op.Key = strings.Clone(op.Key)
		b[i] = op
	}
	c.batches = append(c.batches, b)
	fail := c.fail
	c.mu.Unlock()
	if fail != nil {
		return fail
	}
	return c.Store.Apply(ctx, now, ops, results)
}

func (c *countingStore) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.batches)
}

func (c *countingStore) last() []store.Op {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.batches[len(c.batches)-1]
}

func (c *countingStore) setFail(err error) {
	c.mu.Lock()
	c.fail = err
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 22, 14, 0, 0, 0, time.UTC)

type fixture struct {
	mem   *memory.Store
	cs    *countingStore
	lg    *ledger.Ledger
	lim   *limiter.Limiter
	clock *time.Time
}

func newFixture(t *testing.T, rules []limiter.Rule, opts ...ledger.Option) *fixture {
	t.Helper()
	f := &fixture{mem: memory.New(), clock: new(time.Time)}
	*f.clock = t0
	now := func() time.Time { return *f.clock }
	f.cs = &countingStore{Store: f.mem}
	var err error
	f.lg, err = ledger.New(f.mem, append([]ledger.Option{ledger.WithClock(now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.lim, err = limiter.New(f.cs, rules, limiter.WithRecorder(f.lg), limiter.WithClock(now))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) usage(t *testing.T, g ledger.Group, facts dimensions.Facts) ledger.Usage {
	t.Helper()
	u, err := f.lg.Usage(context.Background(), *f.clock, ledger.Subject{Group: g, Facts: facts})
	if err != nil {
		t.Fatalf("Usage(%v): %v", g, err)
	}
	return u
}

var alice = dimensions.Facts{APIKey: "sk-alice", Tenant: "acme", Model: "gpt-4o", Custom: map[string]string{"app": "chat"}}

func tokenRule() limiter.Rule {
	return limiter.Rule{Name: "tpm", Algorithm: algorithms.TokenBucket, Limit: 10_000, Period: time.Minute, Unit: limiter.Tokens, By: []dimensions.Dimension{dimensions.APIKey}}
}

func rpmRule(limit int64) limiter.Rule {
	return limiter.Rule{Name: "rpm", Algorithm: algorithms.FixedWindow, Limit: limit, Period: time.Minute, By: []dimensions.Dimension{dimensions.APIKey}}
}

func TestSettleRecordsInTheSameStoreCall(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, []limiter.Rule{tokenRule()})
	d := f.lim.Check(ctx, &limiter.Request{Facts: alice, Estimate: limiter.Usage{InputTokens: 100, OutputTokens: 500}})
	if !d.Allowed || d.Reservation == nil {
		t.Fatalf("check: allowed %v, reservation %v; want an allowed reservation", d.Allowed, d.Reservation)
	}
	if got := f.cs.calls(); got != 1 {
		t.Fatalf("after check: %d store calls, want 1", got)
	}
	// The check's batch is the rule's op and one request op per group.
	if got, want := len(f.cs.last()), 1+4; got != want {
		t.Errorf("check batch: %d ops, want %d", got, want)
	}
	for _, op := range f.cs.last()[1:] {
		if !op.Shadow || op.Mode != algorithms.Force || op.Params.Limit != algorithms.MaxLimit {
			t.Errorf("ledger op %q at check: shadow %v, mode %v, limit %d; want shadow, force, MaxLimit", op.Key, op.Shadow, op.Mode, op.Params.Limit)
		}
	}
	if err := d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 120, OutputTokens: 80, Cost: 7}); err != nil {
		t.Fatal(err)
	}
	if got := f.cs.calls(); got != 2 {
		t.Fatalf("after settle: %d store calls, want 2 (the ledger rides in the settle call)", got)
	}
	if got, want := len(f.cs.last()), 1+4*3; got != want {
		t.Errorf("settle batch: %d ops, want %d (the correction and 3 per group)", got, want)
	}
	want := ledger.Usage{Requests: 1, InputTokens: 120, OutputTokens: 80, Cost: 7}
	for _, g := range f.lg.Groups() {
		if got := f.usage(t, g, alice); got != want {
			t.Errorf("usage of %s: got %+v, want %+v", g, got, want)
		}
	}
}

func TestPlainRequestRulesAreCounted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, []limiter.Rule{rpmRule(10)})
	for range 3 {
		d := f.lim.Check(ctx, &limiter.Request{Facts: alice})
		if !d.Allowed {
			t.Fatal("denied")
		}
		if d.Reservation == nil {
			t.Fatal("with a recorder, an allowed decision carries a Reservation")
		}
		if err := d.Reservation.Settle(ctx, limiter.Usage{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := f.cs.calls(); got != 3 {
		t.Errorf("%d store calls for 3 checks settled with no usage, want 3", got)
	}
	got := f.usage(t, ledger.Group{dimensions.APIKey}, alice)
	if want := (ledger.Usage{Requests: 3}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestRequestsMatchingNoRuleAreCountedAtSettle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	d := f.lim.Check(ctx, &limiter.Request{Facts: alice})
	if got := f.cs.calls(); got != 0 {
		t.Fatalf("check with no rule: %d store calls, want 0", got)
	}
	if err := d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 5, OutputTokens: 6}); err != nil {
		t.Fatal(err)
	}
	if got := f.cs.calls(); got != 1 {
		t.Fatalf("settle: %d store calls, want 1", got)
	}
	d = f.lim.Check(ctx, &limiter.Request{Facts: alice})
	if err := d.Reservation.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	got := f.usage(t, ledger.Group{dimensions.Tenant}, alice)
	if want := (ledger.Usage{Requests: 2, InputTokens: 5, OutputTokens: 6}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestDenialsAreCounted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, []limiter.Rule{rpmRule(2)})
	for i := range 5 {
		d := f.lim.Check(ctx, &limiter.Request{Facts: alice})
		if d.Allowed != (i < 2) {
			t.Fatalf("check %d: allowed %v", i, d.Allowed)
		}
	}
	// 2 admitted checks: 1 call each; 3 denied: the check and the denial.
	if got, want := f.cs.calls(), 2+3*2; got != want {
		t.Errorf("%d store calls, want %d", got, want)
	}
	got := f.usage(t, ledger.Group{App}, alice)
	if want := (ledger.Usage{Requests: 2, Denials: 3}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The rule's counter was not charged by the denials.
	if p := f.lim.Peek(ctx, &limiter.Request{Facts: alice}); p.Limiting.Remaining != 0 {
		t.Errorf("rule remaining %d, want 0", p.Limiting.Remaining)
	}
}

const App = ledger.App

func TestGuardDenialIsCounted(t *testing.T) {
	ctx := context.Background()
	guard := limiter.Rule{Name: "no-gpt4", Guard: func(r *limiter.Request) error {
		if r.Model == "gpt-4o" {
			return errors.New("model not allowed")
		}
		return nil
	}}
	f := newFixture(t, []limiter.Rule{guard})
	if d := f.lim.Check(ctx, &limiter.Request{Facts: alice}); d.Allowed {
		t.Fatal("guard did not deny")
	}
	got := f.usage(t, ledger.Group{dimensions.Model}, alice)
	if want := (ledger.Usage{Denials: 1}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestPeekRecordsNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, []limiter.Rule{rpmRule(1)})
	f.lim.Peek(ctx, &limiter.Request{Facts: alice})
	f.lim.Check(ctx, &limiter.Request{Facts: alice})
	f.lim.Peek(ctx, &limiter.Request{Facts: alice})
	got := f.usage(t, ledger.Group{dimensions.APIKey}, alice)
	if want := (ledger.Usage{Requests: 1}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestStoreFailureAtCheckIsCountedAtSettle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, []limiter.Rule{rpmRule(10)})
	f.cs.setFail(errors.New("down"))
	d := f.lim.Check(ctx, &limiter.Request{Facts: alice})
	if !d.Allowed || d.Err == nil {
		t.Fatalf("check: allowed %v, err %v; want allowed by failing open", d.Allowed, d.Err)
	}
	f.cs.setFail(nil)
	if err := d.Reservation.Settle(ctx, limiter.Usage{}); err != nil {
		t.Fatal(err)
	}
	got := f.usage(t, ledger.Group{dimensions.APIKey}, alice)
	if want := (ledger.Usage{Requests: 1}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestCostFromPriceTable(t *testing.T) {
	ctx := context.Background()
	prices, err := tokens.NewPriceTable("USD", map[string]tokens.Price{"gpt-4o": {Input: 2_500_000, Output: 10_000_000}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil, ledger.WithPrices(prices))
	d := f.lim.Check(ctx, &limiter.Request{Facts: alice})
	d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 1000, OutputTokens: 100})
	got := f.usage(t, ledger.Group{dimensions.Model}, alice)
	// 1000 * 2.5 + 100 * 10 micro-units.
	if want := (ledger.Usage{Requests: 1, InputTokens: 1000, OutputTokens: 100, Cost: 3500}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestPeriodsAreSeparateAndExpire(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, ledger.WithPeriod(time.Hour), ledger.WithRetention(3*time.Hour))
	d := f.lim.Check(ctx, &limiter.Request{Facts: alice})
	*f.clock = t0.Add(time.Hour + time.Minute)
	// Settled in the next period: attributed to the period of the check.
	d.Reservation.Settle(ctx, limiter.Usage{OutputTokens: 9})
	f.lim.Check(ctx, &limiter.Request{Facts: alice}).Reservation.Cancel(ctx)
	g := ledger.Group{dimensions.APIKey}
	steps := []struct {
		at   time.Time
		want ledger.Usage
	}{
		{t0, ledger.Usage{Requests: 1, OutputTokens: 9}},
		{t0.Add(time.Hour), ledger.Usage{Requests: 1}},
	}
	for _, s := range steps {
		u, err := f.lg.Usage(ctx, s.at, ledger.Subject{Group: g, Facts: alice})
		if err != nil || u != s.want {
			t.Errorf("usage of period %s: got %+v, %v; want %+v", s.at, u, err, s.want)
		}
	}
	// Past the retention, the first period is gone, and a late settlement
	// adds nothing.
	late := f.lim.Check(ctx, &limiter.Request{Facts: alice})
	*f.clock = t0.Add(4 * time.Hour)
	late.Reservation.Settle(ctx, limiter.Usage{OutputTokens: 1})
	if u, _ := f.lg.Usage(ctx, t0, ledger.Subject{Group: g, Facts: alice}); u != (ledger.Usage{}) {
		t.Errorf("expired period: got %+v, want zero", u)
	}
	if u, _ := f.lg.Usage(ctx, t0.Add(4*time.Hour), ledger.Subject{Group: g, Facts: alice}); u != (ledger.Usage{}) {
		t.Errorf("current period after a late settle: got %+v, want zero", u)
	}
}

func TestQueryErrors(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.lg.Usage(ctx, t0, ledger.Subject{Group: ledger.Group{dimensions.User}, Facts: alice}); !errors.Is(err, ledger.ErrUnknownGroup) {
		t.Errorf("unknown group: got %v, want ErrUnknownGroup", err)
	}
	if _, err := f.lg.Usage(ctx, t0, ledger.Subject{Group: ledger.Group{dimensions.APIKey}}); !errors.Is(err, ledger.ErrMissingDimension) {
		t.Errorf("missing value: got %v, want ErrMissingDimension", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		opt  ledger.Option
	}{
		{"sub-second period", ledger.WithPeriod(time.Millisecond)},
		{"retention shorter than period", ledger.WithRetention(time.Hour)},
		{"no groups", ledger.WithGroups()},
		{"duplicate group", ledger.WithGroups(ledger.Group{"a"}, ledger.Group{"a"})},
		{"empty prefix", ledger.WithPrefix("")},
	}
	for _, c := range cases {
		if _, err := ledger.New(memory.New(), c.opt); !errors.Is(err, ledger.ErrInvalidConfig) {
			t.Errorf("%s: got %v, want ErrInvalidConfig", c.name, err)
		}
	}
	if _, err := ledger.New(nil); !errors.Is(err, ledger.ErrInvalidConfig) {
		t.Errorf("nil store: got %v", err)
	}
}

func TestConcurrentRecording(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, []limiter.Rule{tokenRule()})
	const workers, each = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			facts := alice
			facts.Tenant = fmt.Sprintf("team-%d", w%2)
			for range each {
				d := f.lim.Check(ctx, &limiter.Request{Facts: facts, Estimate: limiter.Usage{InputTokens: 1}})
				if d.Reservation != nil {
					d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 2, OutputTokens: 3})
				}
			}
		})
	}
	wg.Wait()
	got := f.usage(t, ledger.Group{dimensions.APIKey}, alice)
	want := ledger.Usage{Requests: workers * each, InputTokens: 2 * workers * each, OutputTokens: 3 * workers * each}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestRedis runs the recording path on a real redis-server: one script per
// check and per settle, and queries through the store's Peek.
func TestRedis(t *testing.T) {
	if redistest.Binary() == "" {
		t.Skip("redis-server is not installed")
	}
	addr := redistest.StartServer(t)
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	s := redis.New(c)
	ctx := context.Background()
	lg, err := ledger.New(s)
	if err != nil {
		t.Fatal(err)
	}
	lim, err := limiter.New(s, []limiter.Rule{tokenRule(), rpmRule(3)}, limiter.WithRecorder(lg))
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		d := lim.Check(ctx, &limiter.Request{Facts: alice, Estimate: limiter.Usage{InputTokens: 10}})
		if d.Err != nil {
			t.Fatal(d.Err)
		}
		if err := d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 10, OutputTokens: 1, Cost: 2}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := lg.Usage(ctx, time.Now(), ledger.Subject{Group: ledger.Group{dimensions.APIKey}, Facts: alice})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ledger.Usage{Requests: 3, Denials: 1, InputTokens: 30, OutputTokens: 3, Cost: 6}); u != want {
		t.Errorf("got %+v, want %+v", u, want)
	}
	var b bytes.Buffer
	if err := lg.Export(ctx, &b, ledger.JSON, time.Now()); err != nil {
		t.Fatal(err)
	}
	var rows []ledger.Row
	if err := json.Unmarshal(b.Bytes(), &rows); err != nil || len(rows) != 4 {
		t.Errorf("export: %d rows, %v; want 4 (one per group)\n%s", len(rows), err, b.String())
	}
}

func TestExportCSVAndJSON(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, []limiter.Rule{rpmRule(1)})
	bob := dimensions.Facts{APIKey: "sk-bob", Tenant: "=acme", Model: "gpt-4o"}
	for _, facts := range []dimensions.Facts{alice, alice, bob} {
		d := f.lim.Check(ctx, &limiter.Request{Facts: facts})
		if d.Reservation != nil {
			d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 10})
		}
	}
	var b bytes.Buffer
	if err := f.lg.Export(ctx, &b, ledger.CSV, t0); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := "period,group,api_key,app,tenant,model,requests,denials,input_tokens,output_tokens,cost"
	if got := strings.Join(records[0], ","); got != wantHeader {
		t.Errorf("header: got %s, want %s", got, wantHeader)
	}
	// alice: 4 groups; bob: api_key, tenant, model (no app); the model row
	// gpt-4o is shared.
	if got, want := len(records)-1, 4+2; got != want {
		t.Errorf("%d rows, want %d:\n%v", got, want, records)
	}
	rows := map[string][]string{}
	for _, r := range records[1:] {
		rows[r[1]+"/"+strings.Join(r[2:6], "")] = r
	}
	keyHash := string(dimensions.AppendValue(nil, dimensions.APIKey, "sk-alice"))
	checks := []struct{ key, requests, denials, input string }{
		{"api_key/" + keyHash, "1", "1", "10"},
		{"app/chat", "1", "1", "10"},
		{"tenant/'=acme", "1", "0", "10"}, // a formula-looking value is quoted
		{"model/gpt-4o", "2", "1", "20"},
	}
	for _, c := range checks {
		r, ok := rows[c.key]
		if !ok {
			t.Errorf("no row %s in %v", c.key, rows)
			continue
		}
		if r[0] != "2026-11-22T00:00:00Z" || r[6] != c.requests || r[7] != c.denials || r[8] != c.input {
			t.Errorf("row %s: got %v, want period 2026-11-22, requests %s, denials %s, input %s", c.key, r, c.requests, c.denials, c.input)
		}
	}
	if strings.Contains(b.String(), "sk-alice") {
		t.Error("the export holds a raw API key")
	}
	// An exported row's hashed key can be queried.
	byHash := f.usage(t, ledger.Group{dimensions.APIKey}, dimensions.Facts{APIKey: keyHash})
	if byRaw := f.usage(t, ledger.Group{dimensions.APIKey}, alice); byHash != byRaw || byHash.Requests != 1 {
		t.Errorf("query by hash: got %+v, want %+v", byHash, byRaw)
	}

	b.Reset()
	if err := f.lg.Export(ctx, &b, ledger.JSON, t0); err != nil {
		t.Fatal(err)
	}
	var out []ledger.Row
	if err := json.Unmarshal(b.Bytes(), &out); err != nil {
		t.Fatalf("JSON export does not parse: %v\n%s", err, b.String())
	}
	if len(out) != 6 {
		t.Errorf("JSON: %d rows, want 6", len(out))
	}
	for _, r := range out {
		if r.Group == "model" && (r.Subject["model"] != "gpt-4o" || r.Requests != 2 || r.Denials != 1) {
			t.Errorf("model row: %+v", r)
		}
	}

	// An empty period exports a header only, or an empty array.
	for _, fm := range []ledger.Format{ledger.CSV, ledger.JSON} {
		b.Reset()
		if err := f.lg.Export(ctx, &b, fm, t0.AddDate(0, 0, -3)); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(b.String(), "\n"); fm == ledger.CSV && got != 1 {
			t.Errorf("empty CSV export: %q", b.String())
		}
		if fm == ledger.JSON {
			var rows []ledger.Row
			if err := json.Unmarshal(b.Bytes(), &rows); err != nil || len(rows) != 0 {
				t.Errorf("empty JSON export: %q, %v", b.String(), err)
			}
		}
	}
}

// failingWriter fails once more than n bytes were written to it.
type failingWriter struct{ n, written int }

var errWriter = errors.New("writer: client gone")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.written+len(p) > w.n {
		return 0, errWriter
	}
	w.written += len(p)
	return len(p), nil
}

// subjects yields n API keys, counting how many were consumed.
func subjects(n int, consumed *int) iter.Seq[ledger.Subject] {
	return func(yield func(ledger.Subject) bool) {
		for i := range n {
			*consumed = i + 1
			if !yield(ledger.Subject{Group: ledger.Group{dimensions.APIKey}, Facts: dimensions.Facts{APIKey: fmt.Sprintf("sk-%08d", i)}}) {
				return
			}
		}
	}
}

func TestExportStopsWhenTheWriterFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil)
	cs := &countingStore{Store: f.mem}
	lg, err := ledger.New(cs)
	if err != nil {
		t.Fatal(err)
	}
	for _, fm := range []ledger.Format{ledger.CSV, ledger.JSON} {
		before := cs.calls()
		consumed := 0
		err := lg.ExportSubjects(ctx, &failingWriter{n: 40 << 10}, fm, t0, subjects(100_000, &consumed))
		if !errors.Is(err, errWriter) {
			t.Errorf("format %d: got %v, want the writer's error", fm, err)
		}
		// ~40 KiB is a few hundred rows: the export must stop within a few
		// chunks of 128 subjects, not read all 100,000.
		if calls := cs.calls() - before; calls > 10 || consumed > 10*128 {
			t.Errorf("format %d: %d store calls and %d subjects consumed after the writer failed; want it to stop", fm, calls, consumed)
		}
	}
}

func TestExportFromIndexStopsWhenTheWriterFails(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, ledger.WithGroups(ledger.Group{dimensions.APIKey}))
	for i := range 2000 {
		f.lim.Check(ctx, &limiter.Request{Facts: dimensions.Facts{APIKey: fmt.Sprint(i)}}).Reservation.Cancel(ctx)
	}
	var b bytes.Buffer
	if err := f.lg.Export(ctx, &b, ledger.CSV, t0); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(b.String(), "\n"); got != 2001 {
		t.Errorf("full export: %d lines, want 2001", got)
	}
	if err := f.lg.Export(ctx, &failingWriter{n: 20 << 10}, ledger.CSV, t0); !errors.Is(err, errWriter) {
		t.Errorf("got %v, want the writer's error", err)
	}
}

// memWriter counts bytes and samples the heap as the export writes.
type memWriter struct {
	bytes, next int
	maxHeap     uint64
}

func (w *memWriter) Write(p []byte) (int, error) {
	w.bytes += len(p)
	if w.bytes >= w.next {
		w.next = w.bytes + 4<<20
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.maxHeap = max(w.maxHeap, ms.HeapAlloc)
	}
	return len(p), nil
}

func TestExportMemoryIsBounded(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 20_000
	}
	ctx := context.Background()
	lg, err := ledger.New(memory.New())
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	w := &memWriter{}
	consumed := 0
	if err := lg.ExportSubjects(ctx, w, ledger.JSON, t0, subjects(n, &consumed)); err != nil {
		t.Fatal(err)
	}
	if consumed != n {
		t.Fatalf("consumed %d subjects, want %d", consumed, n)
	}
	// Every row is over 100 bytes, so the output is many times the bound.
	const bound = 1 << 20
	t.Logf("%d rows, %d bytes written, heap grew by at most %d bytes", n, w.bytes, int64(w.maxHeap)-int64(base))
	if w.bytes < 2*bound {
		t.Fatalf("only %d bytes written: the test proves nothing", w.bytes)
	}
	if w.maxHeap > base+bound {
		t.Errorf("heap grew by %d bytes during the export of %d bytes; want under %d", w.maxHeap-base, w.bytes, bound)
	}
}

func TestIndexIsBounded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, ledger.WithPeriod(time.Hour), ledger.WithGroups(ledger.Group{dimensions.APIKey}), ledger.WithIndexLimit(10))
	check := func(key string) {
		f.lim.Check(ctx, &limiter.Request{Facts: dimensions.Facts{APIKey: key}}).Reservation.Cancel(ctx)
	}
	rows := func(at time.Time) int {
		var b bytes.Buffer
		if err := f.lg.Export(ctx, &b, ledger.CSV, at); err != nil {
			t.Fatal(err)
		}
		return strings.Count(b.String(), "\n") - 1
	}
	for i := range 8 {
		check(fmt.Sprint("a", i))
	}
	*f.clock = t0.Add(time.Hour)
	for i := range 5 {
		check(fmt.Sprint("b", i))
	}
	// The second period's subjects pushed the first period out.
	if got := rows(t0); got != 0 {
		t.Errorf("first period: %d rows, want 0 (dropped from the index)", got)
	}
	if got := rows(*f.clock); got != 5 {
		t.Errorf("second period: %d rows, want 5", got)
	}
	for i := range 10 {
		check(fmt.Sprint("c", i))
	}
	if got := rows(*f.clock); got != 10 {
		t.Errorf("second period: %d rows, want the limit, 10", got)
	}
	if got := f.lg.IndexDropped(); got != 5 {
		t.Errorf("IndexDropped: %d, want 5", got)
	}
	// A subject left out of the index is still counted.
	u, _ := f.lg.Usage(ctx, *f.clock, ledger.Subject{Group: ledger.Group{dimensions.APIKey}, Facts: dimensions.Facts{APIKey: "c9"}})
	if u.Requests != 1 {
		t.Errorf("unindexed subject: %+v, want 1 request", u)
	}
}

var _ io.Writer = (*failingWriter)(nil)
