package policy

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/tollgate-go/tollgate/dimensions"
	"github.com/tollgate-go/tollgate/limiter"
	"github.com/tollgate-go/tollgate/store/memory"
)

const examplesDir = "../examples/policies"

// TestExamplesLoad loads every example policy.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(examplesDir, "*"))
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	for _, f := range files {
		if _, err := LoadFile(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func loadExample(t *testing.T, name string) *Policy {
	t.Helper()
	p, err := LoadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExamplePerModel checks the compact per-model form against its
// translation, and enforces it.
func TestExamplePerModel(t *testing.T) {
	compact := loadExample(t, "per-model.json").Rules()
	long := loadExample(t, "per-model-translated.yaml").Rules()
	byName := func(rules []limiter.Rule) map[string]limiter.Rule {
		m := map[string]limiter.Rule{}
		for _, r := range rules {
			m[r.Name] = r
		}
		return m
	}
	if !reflect.DeepEqual(byName(compact), byName(long)) {
		t.Errorf("compact:\n%+v\ntranslated:\n%+v", compact, long)
	}
	l, _ := newLimiter(t, loadExample(t, "per-model.json"))
	gpt4 := &limiter.Request{Facts: dimensions.Facts{Model: "gpt-4"}, Estimate: limiter.Usage{InputTokens: 100, OutputTokens: 100}}
	if n := admitted(t, l, gpt4, 60); n != 50 {
		t.Errorf("gpt-4 admitted %d of 60; want 50 (rpm)", n)
	}
	big := &limiter.Request{Facts: dimensions.Facts{Model: "claude-sonnet-4"}, Estimate: limiter.Usage{InputTokens: 30000, OutputTokens: 5000}}
	if n := admitted(t, l, big, 3); n != 1 {
		t.Errorf("claude admitted %d of 3 35k-token requests; want 1 (40000 tpm)", n)
	}
}

// TestExampleKeysAndTeams checks a key holding 30% of its team, and the
// group guards.
func TestExampleKeysAndTeams(t *testing.T) {
	p := loadExample(t, "keys-and-teams.yaml")
	l, _ := newLimiter(t, p, limiter.WithFallback(memory.New(), 2))
	ctx := context.Background()
	key := func(k string, tokens int64) *limiter.Request {
		return &limiter.Request{Facts: dimensions.Facts{APIKey: k, Model: "gpt-4o", Custom: map[string]string{"team": "research"}},
			Estimate: limiter.Usage{InputTokens: tokens}}
	}
	// key-tpm: 30% of 100000 = 30000 tokens for one key.
	d := l.Check(ctx, key("k1", 30000))
	if !d.Allowed {
		t.Fatalf("first request denied: %+v", d.Limiting)
	}
	if want := []string{"team-rpm", "team-tpm", "key-rpm", "key-tpm"}; !reflect.DeepEqual(matched(&d), want) {
		t.Errorf("matched %q; want %q", matched(&d), want)
	}
	d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 30000})
	d = l.Check(ctx, key("k1", 1))
	if d.Allowed || d.Limiting.Rule.Name != "key-tpm" || d.Limiting.Rule.Reject.Status != 429 {
		t.Errorf("k1 over its share: allowed=%v limiting=%v", d.Allowed, d.Limiting.Rule)
	}
	// Another key of the team still has room; the team has 70000 left.
	if d := l.Check(ctx, key("k2", 30000)); !d.Allowed {
		t.Errorf("k2 denied: %+v", d.Limiting)
	}
	// Guards: research may not use gpt-3.5; interns' guards only shadow.
	r := key("k3", 10)
	r.Model = "gpt-3.5"
	if d := l.Check(ctx, r); d.Allowed || d.Limiting.Rule.Name != "research-models" {
		t.Errorf("research gpt-3.5: allowed=%v by %v", d.Allowed, d.Limiting.Rule)
	}
	r.Model, r.Custom = "o3", map[string]string{"team": "interns"}
	if d := l.Check(ctx, r); !d.Allowed || !d.ShadowDenied {
		t.Errorf("interns o3: allowed=%v shadowDenied=%v; want allowed, shadow-denied", d.Allowed, d.ShadowDenied)
	}
}

// TestExampleUserOutputQuota checks delayed enforcement of a daily
// output-token quota and its custom rejection.
func TestExampleUserOutputQuota(t *testing.T) {
	p := loadExample(t, "user-output-quota.yaml")
	l, clk := newLimiter(t, p)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	clk.t = time.Date(2026, 6, 1, 9, 0, 0, 0, berlin)
	ctx := context.Background()
	u := &limiter.Request{Facts: dimensions.Facts{User: "alice"}}
	// Settle 4 responses of 49,999 output tokens over four hours: the
	// hourly limit holds, and the day reaches 199,996.
	for range 4 {
		d := l.Check(ctx, u)
		if !d.Allowed {
			t.Fatalf("denied early: %+v", d.Limiting)
		}
		d.Reservation.Settle(ctx, limiter.Usage{OutputTokens: 49999})
		clk.t = clk.t.Add(time.Hour)
	}
	// The response that crosses the quota completes...
	d := l.Check(ctx, u)
	if !d.Allowed {
		t.Fatalf("5th request denied: %+v", d.Limiting)
	}
	d.Reservation.Settle(ctx, limiter.Usage{OutputTokens: 1000})
	// ...and the next request is refused with the custom rejection.
	d = l.Check(ctx, u)
	if d.Allowed || d.Limiting.Rule.Name != "user-daily-output" {
		t.Fatalf("6th request: allowed=%v limiting=%v", d.Allowed, d.Limiting.Rule)
	}
	rej := d.Limiting.Rule.Reject
	if rej.Status != 429 || rej.Headers["X-Quota"] != "daily-output-tokens" || rej.ContentType != "application/json" {
		t.Errorf("rejection = %+v", rej)
	}
	// Midnight in Berlin resets the day.
	clk.t = time.Date(2026, 6, 2, 0, 0, 1, 0, berlin)
	if d := l.Check(ctx, u); !d.Allowed {
		t.Errorf("next day denied: %+v", d.Limiting)
	}
}

// TestExampleMCP checks the MCP policy's dimensions compose: a request
// is admitted only if the user, tenant, tool and token rules all admit.
func TestExampleMCP(t *testing.T) {
	p := loadExample(t, "mcp-multitenant.yaml")
	l, _ := newLimiter(t, p)
	ctx := context.Background()
	call := func(user, tool string, tokens int64) *limiter.Request {
		return &limiter.Request{Facts: dimensions.Facts{Tenant: "acme", User: user, Tool: tool, Route: "tools/call"},
			Estimate: limiter.Usage{InputTokens: tokens}}
	}
	d := l.Check(ctx, call("u1", "web_search", 10))
	want := []string{"user-rpm", "tenant-rpm", "tool-rpm", "search-per-user", "tenant-tokens", "user-tokens", "tool-calls-in-flight"}
	if !d.Allowed || !reflect.DeepEqual(matched(&d), want) {
		t.Fatalf("allowed=%v matched %q; want %q", d.Allowed, matched(&d), want)
	}
	d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 10})
	// web_search bursts to 3 per user (GCRA), then refuses.
	n := 1
	for range 5 {
		d := l.Check(ctx, call("u1", "web_search", 10))
		if d.Allowed {
			n++
			d.Reservation.Settle(ctx, limiter.Usage{InputTokens: 10})
		} else if d.Limiting.Rule.Name != "search-per-user" || d.Limiting.Rule.Reject.Status != 429 {
			t.Errorf("refused by %v", d.Limiting.Rule)
		}
	}
	if n != 3 {
		t.Errorf("web_search admitted %d; want 3 (burst)", n)
	}
	// A user holds 20% of the tenant's 500000 tokens per hour.
	if d := l.Check(ctx, call("u2", "read_file", 100001)); d.Allowed || d.Limiting.Rule.Name != "user-tokens" {
		t.Errorf("u2 over its token share: allowed=%v by %v", d.Allowed, d.Limiting.Rule)
	}
	// Five calls in flight per user; the sixth waits for a release.
	var held []*limiter.Reservation
	for i := range 6 {
		d := l.Check(ctx, call("u3", "read_file", 1))
		if i < 5 != d.Allowed {
			t.Errorf("call %d in flight: allowed=%v (%v)", i+1, d.Allowed, d.Limiting.Rule)
		}
		if d.Reservation != nil {
			held = append(held, d.Reservation)
		}
	}
	held[0].Settle(ctx, limiter.Usage{InputTokens: 1})
	if d := l.Check(ctx, call("u3", "read_file", 1)); !d.Allowed {
		t.Errorf("after a release: denied by %v", d.Limiting.Rule)
	}
}

func TestExamplesUseTheSchema(t *testing.T) {
	// Every example names the schema for editors, by a path that exists.
	files, _ := filepath.Glob(filepath.Join(examplesDir, "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if !contains(string(b), "../../policy/schema/tollgate.schema.json") {
			t.Errorf("%s does not reference the schema", f)
		}
	}
	if _, err := os.Stat(filepath.Join(examplesDir, "../../policy/schema/tollgate.schema.json")); err != nil {
		t.Error(err)
	}
}
