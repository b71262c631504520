package redis

import (
	"context"
	"crypto/sha1"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

//go:embed apply.lua
var applyScript string

// applySHA is the SHA1 of applyScript, the name EVALSHA runs it by.
var applySHA = func() string {
	h := sha1.Sum([]byte(applyScript))
	return hex.EncodeToString(h[:])
}()

// Pre-boxed arguments, so that building a call allocates nothing for them.
var (
	evalshaArg any = "evalsha"
	evalArg    any = "eval"
	shaArg     any = applySHA
	scriptArg  any = applyScript
)

// ErrReply is wrapped by the error returned when Redis answers something
// the store cannot read: a reply of the wrong shape, or a key whose value
// is not a state this package wrote.
var ErrReply = errors.New("redis: malformed reply")

// maxNow bounds the caller's clock: microseconds that a Lua double holds
// exactly.
const maxNow = 1<<53 - 1

// Option configures a [Store].
type Option func(*config)

type config struct {
	prefix      string
	hashTag     func(key string) string
	callerClock bool
	minTTL      int64 // ms
}

// WithKeyPrefix puts prefix before every key the store writes, for example
// "tollgate:" to share a database with other data. The default is no prefix.
// A prefix that holds a hash tag ("{tollgate}:") puts every key in one
// Cluster slot.
func WithKeyPrefix(prefix string) Option {
	return func(c *config) { c.prefix = prefix }
}

// WithHashTag makes the Redis key of op key K prefix + "{" + tag(K) + "}" + K
// when tag(K) is not empty, so that Redis Cluster hashes only the tag: keys
// with the same tag (for example, the tenant's part of the key) share a
// slot, and a decision whose keys share a slot is all or nothing even on a
// Cluster. tag must be safe for concurrent use and must not return a string
// holding '}'. The default adds no tag.
func WithHashTag(tag func(key string) string) Option {
	return func(c *config) { c.hashTag = tag }
}

// WithCallerClock makes the script use the now passed to Apply instead of
// Redis TIME. Deterministic tests (and the storetest conformance suite) use
// it; in production, Redis TIME keeps gateway instances with skewed clocks
// in agreement. With it, now must be in [0, 2^53) µs.
func WithCallerClock() Option {
	return func(c *config) { c.callerClock = true }
}

// WithMinTTL makes every key written live at least d (rounded up to whole
// milliseconds), even when its state would reset sooner. Use it with
// [WithCallerClock] when the caller's clock runs apart from Redis's (a
// test's virtual clock): TTLs always run on Redis's clock. The default is
// none: a key lives exactly until its state resets.
func WithMinTTL(d time.Duration) Option {
	return func(c *config) { c.minTTL = int64((d + time.Millisecond - 1) / time.Millisecond) }
}

// Store is a [store.Store] on Redis: single node, Sentinel (a failover
// client) or Cluster, through any [goredis.UniversalClient]. The zero Store
// is not usable; call [New]. A Store is safe for concurrent use.
type Store struct {
	client  goredis.UniversalClient
	cluster *goredis.ClusterClient // nil unless the client is a Cluster client
	nodes   nodes                  // a Cluster's masters' health
	cfg     config
	closed  atomic.Bool
	calls   sync.Pool // *call
}

var _ store.Store = (*Store)(nil)

// New returns a Store that keeps its counters in client. The store never
// modifies the client (no hooks, no SELECT) and Close does not close it.
func New(client goredis.UniversalClient, opts ...Option) *Store {
	s := &Store{client: client}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.cluster, _ = client.(*goredis.ClusterClient)
	s.calls.New = func() any { return new(call) }
	return s
}

// Close marks the store closed: later calls return [store.ErrClosed]. It
// does not close the client. A second Close returns store.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return fmt.Errorf("redis: %w", store.ErrClosed)
	}
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return fmt.Errorf("redis: %w", store.ErrClosed)
	}
	return nil
}

// Apply evaluates ops as one batch (see package store) in one EVALSHA of
// one Lua script. On a single node (or when every key of the batch hashes
// to one Cluster slot) the batch is all or nothing. On a Cluster, ops are
// grouped by slot, the groups run in parallel, and groups that committed
// are refunded when another denied (see the package documentation).
//
// With [WithCallerClock], now (µs since the Unix epoch) must be in
// [0, 2^53); otherwise it is ignored and the script reads Redis TIME.
//
// The script call is never retried by go-redis: if the connection fails
// after the script was sent, Apply returns an error and the batch may have
// been charged once, never twice.
func (s *Store) Apply(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := store.Validate(ops, results); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if err := s.checkNow(now); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	if s.cluster != nil && !s.oneSlot(ops) {
		d := []Decision{{Ops: ops, Results: results}}
		s.applyDecisions(ctx, now, d)
		return d[0].Err
	}
	c := s.getCall()
	defer s.putCall(c)
	c.build(s, now, ops, nil, false)
	cmd, err := s.run(ctx, c)
	if err != nil {
		return err
	}
	_, err = parseReply(cmd.Bytes(), results[:len(ops)])
	return err
}

func (s *Store) checkNow(now int64) error {
	if s.cfg.callerClock && (now < 0 || now > maxNow) {
		return fmt.Errorf("redis: %w: now %dµs outside [0, 2^53)", store.ErrInvalidOp, now)
	}
	return nil
}

// run sends the call's EVALSHA, and EVAL when the script is not loaded
// (NOSCRIPT: a restarted or flushed server, or a new Cluster node). The
// command is a [goredis.ZeroCopyStringCmd]: go-redis never retries it, and
// its reply lands in the call's buffer.
func (s *Store) run(ctx context.Context, c *call) (*goredis.ZeroCopyStringCmd, error) {
	n := s.nodeFor(ctx, c.strs[0])
	if !n.allow() {
		return nil, fmt.Errorf("redis: apply: %w", s.nodeError(n, ErrNodeDown))
	}
	cmd := goredis.NewZeroCopyStringCmd(ctx, c.reply, c.args...)
	err := s.client.Process(ctx, cmd)
	if err != nil && isNoScript(err) {
		c.useEval()
		cmd = goredis.NewZeroCopyStringCmd(ctx, c.reply, c.args...)
		err = s.client.Process(ctx, cmd)
	}
	for try := 0; err != nil && isTryAgain(err) && try < tryAgainAttempts && pause(ctx, tryAgainPause); try++ {
		cmd = goredis.NewZeroCopyStringCmd(ctx, c.reply, c.args...)
		err = s.client.Process(ctx, cmd)
	}
	if !errors.Is(err, context.Canceled) {
		n.record(err)
	}
	if err != nil {
		s.noteFailure(ctx, err)
		return nil, fmt.Errorf("redis: apply: %w", s.nodeError(n, err))
	}
	return cmd, nil
}

// noteFailure asks a Cluster client to reload its slot map after a failure
// that did not come from Redis itself (a dead node, a timeout). go-redis
// does that on its own only for commands it may retry, and script calls
// are never retried: without this, a failed-over master keeps failing
// until the client's periodic reload, up to a minute later. The reload is
// lazy and debounced by go-redis.
func (s *Store) noteFailure(ctx context.Context, err error) {
	var reply goredis.Error
	if s.cluster != nil && !errors.As(err, &reply) {
		s.cluster.ReloadState(ctx)
	}
}

func isNoScript(err error) bool {
	return goredis.HasErrorPrefix(err, "NOSCRIPT")
}

// A Cluster answers TRYAGAIN to a multi-key command whose slot is being
// migrated and whose keys are not all on one side yet. The script did not
// run, so sending it again is safe; the migration of a slot's keys
// usually completes within milliseconds.
const (
	tryAgainAttempts = 5
	tryAgainPause    = 20 * time.Millisecond
)

func isTryAgain(err error) bool {
	return goredis.HasErrorPrefix(err, "TRYAGAIN")
}

// pause waits d, or until ctx ends; it reports whether the full wait
// happened.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Reset deletes the state of keys (DEL; one DEL per slot on a Cluster).
// Keys that do not exist are ignored.
func (s *Store) Reset(ctx context.Context, keys ...string) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	rkeys := make([]string, len(keys))
	for i, k := range keys {
		rkeys[i] = s.redisKey(k)
	}
	if s.cluster == nil {
		if err := s.client.Del(ctx, rkeys...).Err(); err != nil {
			return fmt.Errorf("redis: reset: %w", err)
		}
		return nil
	}
	bySlot := make(map[int][]string)
	for _, k := range rkeys {
		slot := keySlot(k)
		bySlot[slot] = append(bySlot[slot], k)
	}
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for _, ks := range bySlot {
			p.Del(ctx, ks...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis: reset: %w", err)
	}
	return nil
}

// redisKey returns the Redis key of op key k: the prefix, the hash tag if
// any, then k.
func (s *Store) redisKey(k string) string {
	return string(s.appendKey(nil, k))
}

func (s *Store) appendKey(b []byte, k string) []byte {
	b = append(b, s.cfg.prefix...)
	if s.cfg.hashTag != nil {
		if tag := s.cfg.hashTag(k); tag != "" {
			b = append(b, '{')
			b = append(b, tag...)
			b = append(b, '}')
		}
	}
	return append(b, k...)
}

// call holds the reusable buffers of one script call: the text of its keys
// and arguments, the go-redis arguments pointing at it, and the reply.
type call struct {
	text  []byte
	ends  []int
	strs  []string
	args  []any
	reply []byte
	slots []int
}

func (s *Store) getCall() *call  { return s.calls.Get().(*call) }
func (s *Store) putCall(c *call) { s.calls.Put(c) }

// build fills c with the EVALSHA of ops. With idx, it takes the ops at
// those indexes only. With inverse, each op is replaced by the op that
// undoes its charge (the Cluster refund).
func (c *call) build(s *Store, now int64, ops []store.Op, idx []int, inverse bool) {
	n := len(ops)
	if idx != nil {
		n = len(idx)
	}
	op := func(i int) *store.Op {
		if idx != nil {
			return &ops[idx[i]]
		}
		return &ops[i]
	}
	b, ends := c.text[:0], c.ends[:0]
	for i := range n {
		b = s.appendKey(b, op(i).Key)
		ends = append(ends, len(b))
	}
	if s.cfg.callerClock {
		b = strconv.AppendInt(b, now, 10)
	}
	ends = append(ends, len(b))
	b = strconv.AppendInt(b, s.cfg.minTTL, 10)
	ends = append(ends, len(b))
	for i := range n {
		o := op(i)
		p := o.Params
		cost := min(max(o.Cost, -algorithms.MaxLimit), algorithms.MaxLimit)
		mode := o.Mode
		shadow := o.Shadow
		if inverse {
			switch {
			case cost > 0:
				cost, mode = -cost, algorithms.Normal
			case cost < 0:
				cost, mode = -cost, algorithms.Force
			}
			shadow = false
		}
		// The fourth argument is the burst for the buckets, the offset for
		// the windows: no algorithm reads both.
		x := p.Burst
		if p.Kind == algorithms.FixedWindow || p.Kind == algorithms.SlidingWindow {
			x = p.Offset % p.Period
			if x < 0 {
				x += p.Period
			}
		}
		kf := int64(p.Kind) * 4
		if mode == algorithms.Force {
			kf++
		}
		if shadow {
			kf += 2
		}
		for _, v := range [...]int64{kf, p.Limit, p.Period, x, cost} {
			b = strconv.AppendInt(b, v, 10)
			ends = append(ends, len(b))
		}
	}
	c.text, c.ends = b, ends
	// One string for every key and argument: one allocation per call.
	text := string(b)
	strs := c.strs[:0]
	start := 0
	for _, e := range ends {
		strs = append(strs, text[start:e])
		start = e
	}
	c.strs = strs
	args := append(c.args[:0], evalshaArg, shaArg, n)
	for i := range strs {
		args = append(args, &strs[i])
	}
	c.args = args
	if need := 16 + 80*n; cap(c.reply) < need {
		c.reply = make([]byte, need)
	}
	c.reply = c.reply[:cap(c.reply)]
}

// useEval turns the call's EVALSHA into an EVAL, which also loads the script.
func (c *call) useEval() {
	c.args[0], c.args[1] = evalArg, scriptArg
}

// parseReply reads the script's reply into results and reports whether the
// batch committed.
func parseReply(b []byte, results []algorithms.Result) (admitted bool, err error) {
	var fields [5]int64
	a, b, ok := nextInt(b)
	if !ok || (a != 0 && a != 1) {
		return false, fmt.Errorf("%w: %q", ErrReply, truncate(b))
	}
	for i := range results {
		for j := range fields {
			fields[j], b, ok = nextInt(b)
			if !ok {
				return false, fmt.Errorf("%w: op %d field %d", ErrReply, i, j)
			}
		}
		allowed, reason, rem, retry, reset := fields[0], fields[1], fields[2], fields[3], fields[4]
		if allowed < 0 || allowed > 1 || reason < 0 || reason > 2 || (allowed == 1) != (reason == 0) || rem < 0 || retry < 0 || reset < 0 {
			return false, fmt.Errorf("%w: op %d: %v", ErrReply, i, fields)
		}
		results[i] = algorithms.Result{
			Allowed:    allowed == 1,
			Reason:     algorithms.Reason(reason),
			Remaining:  rem,
			RetryAfter: retry,
			ResetAfter: reset,
		}
	}
	if len(b) != 0 {
		return false, fmt.Errorf("%w: %d trailing bytes", ErrReply, len(b))
	}
	return a == 1, nil
}

// nextInt reads a decimal int64 followed by a space or the end of b.
func nextInt(b []byte) (v int64, rest []byte, ok bool) {
	if len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	i := 0
	var u uint64
	for ; i < len(b) && b[i] != ' '; i++ {
		d := b[i] - '0'
		if d > 9 || u > (1<<63)/10 {
			return 0, nil, false
		}
		u = u*10 + uint64(d)
	}
	if i == 0 || i > 19 || u > 1<<63 || (u == 1<<63 && !neg) {
		return 0, nil, false
	}
	v = int64(u)
	if neg {
		v = -v
	}
	return v, b[i:], true
}

func truncate(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
