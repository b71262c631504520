package policy

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-go/tollgate/limiter"
)

// ReloadEvent reports one attempt to replace a limiter's rules.
type ReloadEvent struct {
	// Source is the file path, or "" for Apply.
	Source string
	// Err is nil when the new rules are in force; otherwise the old rules
	// stay, and Err says why (a load error holds *Error values).
	Err error
	// Rules is the number of rules now in force.
	Rules int
}

// WithReloadHook sets a function called after every reload attempt of a
// Reloader, successful or not: a place to count a metric.
func WithReloadHook(f func(ReloadEvent)) Option {
	return func(o *options) { o.reloadHook = f }
}

// WithPollInterval sets how often Watch looks at its file; the default is
// 2s.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.pollInterval = d
		}
	}
}

// Reloader replaces a limiter's rules with those of new policy documents.
// A document is loaded and validated completely before it replaces the
// old rules, and the swap is atomic (Limiter.SetRules); an invalid
// document keeps the old rules in force, is logged and is counted.
// Counters of rules whose name and parameters did not change survive a
// reload. A Reloader is safe for concurrent use.
type Reloader struct {
	lim      *limiter.Limiter
	opts     options
	mu       sync.Mutex // serializes reloads
	current  atomic.Pointer[Policy]
	reloads  atomic.Uint64
	failures atomic.Uint64
}

// NewReloader returns a Reloader for l. It does not change l's rules until
// Apply, ApplyFile or Watch loads a document. Options apply to every
// document it loads (WithLogger, WithEvalErrorHook) and to reloads
// (WithReloadHook, WithPollInterval).
func NewReloader(l *limiter.Limiter, opts ...Option) *Reloader {
	return &Reloader{lim: l, opts: newOptions(opts)}
}

// Policy returns the policy in force, or nil before the first successful
// reload.
func (r *Reloader) Policy() *Policy { return r.current.Load() }

// Reloads returns how many reloads succeeded.
func (r *Reloader) Reloads() uint64 { return r.reloads.Load() }

// Failures returns how many reloads failed and kept the old rules.
func (r *Reloader) Failures() uint64 { return r.failures.Load() }

// Apply loads data and, if it is valid, puts its rules in force.
func (r *Reloader) Apply(data []byte) error {
	return r.apply("", data)
}

// ApplyFile reads the document at path and applies it.
func (r *Reloader) ApplyFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		err = fmt.Errorf("policy: %w", err)
		r.report(path, err)
		return err
	}
	return r.apply(path, data)
}

func (r *Reloader) apply(source string, data []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := load(data, &r.opts)
	if err == nil {
		if err = r.lim.SetRules(p.rules); err != nil {
			err = fmt.Errorf("policy: the limiter refused the rules: %w", err)
		}
	}
	if err == nil {
		r.current.Store(p)
	}
	r.report(source, err)
	return err
}

func (r *Reloader) report(source string, err error) {
	n := 0
	if p := r.current.Load(); p != nil {
		n = len(p.rules)
	}
	if err != nil {
		r.failures.Add(1)
		r.opts.logger.Error("tollgate: policy reload failed; the old rules stay in force",
			slog.String("source", source), slog.Any("error", err))
	} else {
		r.reloads.Add(1)
		r.opts.logger.Info("tollgate: policy reloaded", slog.String("source", source), slog.Int("rules", n))
	}
	if r.opts.reloadHook != nil {
		r.opts.reloadHook(ReloadEvent{Source: source, Err: err, Rules: n})
	}
}

// Watch applies the document at path now and whenever its content
// changes, polling its modification time and size every poll interval
// (WithPollInterval) and comparing a SHA-256 of the content, until ctx is
// done; it then returns ctx's error. It runs on the caller's goroutine:
// start it with `go r.Watch(ctx, path)`. A failed reload is reported
// once per distinct content, not on every poll.
func (r *Reloader) Watch(ctx context.Context, path string) error {
	t := time.NewTicker(r.opts.pollInterval)
	defer t.Stop()
	var (
		lastMod  time.Time
		lastSize int64 = -1
		lastSum  [sha256.Size]byte
		lastErr  string
		seen     bool
	)
	for {
		fi, err := os.Stat(path)
		switch {
		case err != nil:
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				lastSize = -1
				r.report(path, fmt.Errorf("policy: %w", err))
			}
		case !fi.ModTime().Equal(lastMod) || fi.Size() != lastSize:
			lastMod, lastSize, lastErr = fi.ModTime(), fi.Size(), ""
			data, err := os.ReadFile(path)
			if err != nil {
				r.report(path, fmt.Errorf("policy: %w", err))
				break
			}
			if sum := sha256.Sum256(data); !seen || sum != lastSum {
				seen, lastSum = true, sum
				_ = r.apply(path, data)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
