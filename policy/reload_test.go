package policy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tollgate-go/tollgate/dimensions"
)

const reloadV1 = `version: 1
rules:
  - {name: per-user, limit: 5/m, by: [user], algorithm: fixed_window}
  - {name: per-tenant, limit: 100/m, by: [tenant], algorithm: fixed_window}
`

// TestReloadKeepsCountersOfUnchangedRules applies a new document to a
// real limiter: the unchanged rule keeps its counter, the changed one
// starts afresh.
func TestReloadKeepsCountersOfUnchangedRules(t *testing.T) {
	l, _ := newLimiter(t, nil)
	var events []ReloadEvent
	r := NewReloader(l, WithReloadHook(func(e ReloadEvent) { events = append(events, e) }))
	if err := r.Apply([]byte(reloadV1)); err != nil {
		t.Fatal(err)
	}
	u := req(dimensions.Facts{User: "u", Tenant: "t"})
	if n := admitted(t, l, u, 3); n != 3 {
		t.Fatalf("admitted %d; want 3", n)
	}
	// per-user unchanged (its predicate and description may change);
	// per-tenant changes its limit.
	v2 := `version: 1
rules:
  - {name: per-user, limit: 5/m, by: [user], algorithm: fixed_window, description: same limit, when: 'request.user != "admin"'}
  - {name: per-tenant, limit: 4/m, by: [tenant], algorithm: fixed_window}
`
	if err := r.Apply([]byte(v2)); err != nil {
		t.Fatal(err)
	}
	// per-user has 2 left of 5 (counter kept); per-tenant 4 fresh.
	if n := admitted(t, l, u, 5); n != 2 {
		t.Errorf("after reload admitted %d; want 2: the unchanged rule's counter carries over", n)
	}
	// A fresh user shows per-tenant restarted: 4 - 2 used above = 2 left.
	if n := admitted(t, l, req(dimensions.Facts{User: "v", Tenant: "t"}), 5); n != 2 {
		t.Errorf("fresh user admitted %d; want 2 (per-tenant restarted at 4)", n)
	}
	if r.Reloads() != 2 || r.Failures() != 0 || len(events) != 2 || events[1].Rules != 2 || events[1].Err != nil {
		t.Errorf("reloads %d failures %d events %+v", r.Reloads(), r.Failures(), events)
	}
}

// TestInvalidReloadKeepsOldRules checks that an invalid document changes
// nothing, and is logged and counted.
func TestInvalidReloadKeepsOldRules(t *testing.T) {
	var logs bytes.Buffer
	l, _ := newLimiter(t, nil)
	var events []ReloadEvent
	r := NewReloader(l, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithReloadHook(func(e ReloadEvent) { events = append(events, e) }))
	if err := r.Apply([]byte(reloadV1)); err != nil {
		t.Fatal(err)
	}
	old := r.Policy()
	u := req(dimensions.Facts{User: "u", Tenant: "t"})
	admitted(t, l, u, 4)
	bad := `version: 1
rules:
  - {name: per-user, limit: 50/m, by: [user], algorithm: fixed_window}
  - {name: per-tenant, limit: 100/minute, by: [tenant]}
`
	err := r.Apply([]byte(bad))
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Apply(bad) = %v; want ErrInvalid", err)
	}
	if r.Policy() != old || len(l.Rules()) != 2 || l.Rules()[0].Limit != 5 {
		t.Errorf("rules changed by an invalid document: %+v", l.Rules())
	}
	if n := admitted(t, l, u, 5); n != 1 {
		t.Errorf("admitted %d; want 1 (old rule, old counter)", n)
	}
	if r.Failures() != 1 || len(events) != 2 || events[1].Err == nil || events[1].Rules != 2 {
		t.Errorf("failures %d events %+v", r.Failures(), events)
	}
	if !bytes.Contains(logs.Bytes(), []byte("reload failed")) || !bytes.Contains(logs.Bytes(), []byte("100/minute")) {
		t.Errorf("log = %s", logs.String())
	}
	// A document the limiter refuses (local fail mode without a fallback
	// store) is refused the same way.
	if err := r.Apply([]byte("version: 1\nrules: [{name: x, limit: 1/m, on_store_error: local}]\n")); err == nil || r.Policy() != old {
		t.Errorf("Apply(local without fallback) = %v", err)
	}
}

// TestWatch edits a file under a watcher, in a synctest bubble so the
// polling needs no real sleeps.
func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "policy.yaml")
		write := func(s string) {
			t.Helper()
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
			// Make the change visible even on file systems with coarse
			// modification times.
			now := time.Now()
			_ = os.Chtimes(path, now, now)
		}
		write(reloadV1)
		l, _ := newLimiter(t, nil)
		var mu sync.Mutex
		var events []ReloadEvent
		r := NewReloader(l, WithPollInterval(time.Second), WithReloadHook(func(e ReloadEvent) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}))
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- r.Watch(ctx, path) }()
		synctest.Wait()
		if got := len(l.Rules()); got != 2 {
			t.Fatalf("after start: %d rules; want 2", got)
		}
		write("version: 1\nrules: [{name: only, limit: 1/s}]\n")
		time.Sleep(time.Second)
		synctest.Wait()
		if rules := l.Rules(); len(rules) != 1 || rules[0].Name != "only" {
			t.Fatalf("after edit: %+v", rules)
		}
		write("version: 1\nrules: [{name: only, limit: 1/sec}]\n")
		time.Sleep(time.Second)
		synctest.Wait()
		time.Sleep(5 * time.Second) // more polls of the same bad content
		synctest.Wait()
		if rules := l.Rules(); len(rules) != 1 || rules[0].Limit != 1 || r.Failures() != 1 {
			t.Fatalf("after bad edit: rules %+v, failures %d; want old rules, 1 failure", rules, r.Failures())
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(events) != 3 || events[0].Source != path || events[2].Err == nil {
			t.Errorf("events = %+v", events)
		}
	})
}

// TestWatchMissingFile reports a missing file once, then loads it when it
// appears.
func TestWatchMissingFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "later.yaml")
		l, _ := newLimiter(t, nil)
		r := NewReloader(l, WithPollInterval(time.Second))
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go r.Watch(ctx, path)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if r.Failures() != 1 || r.Policy() != nil {
			t.Fatalf("failures %d, policy %v; want 1 failure, no policy", r.Failures(), r.Policy())
		}
		if err := os.WriteFile(path, []byte(reloadV1), 0o600); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if r.Reloads() != 1 || len(l.Rules()) != 2 {
			t.Errorf("reloads %d, rules %d; want 1, 2", r.Reloads(), len(l.Rules()))
		}
	})
}
