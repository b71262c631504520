package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// Peek answers, for each op, what a peek (cost 0) would: whether one more
// unit would be admitted, the Remaining units, and when the key resets. It
// ignores the ops' Cost, Mode and Shadow, and changes nothing: it reads the
// states with plain reads (MGET, or GETs pipelined per node on a Cluster;
// with TIME in the same round trip unless [WithCallerClock]) and runs
// [algorithms.Apply] in Go. It runs no script, so it also works on
// replicas and with read-only ACLs.
func (s *Store) Peek(ctx context.Context, now int64, ops []store.Op, results []algorithms.Result) error {
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
	keys := make([]string, len(ops))
	for i := range ops {
		keys[i] = s.redisKey(ops[i].Key)
	}
	vals := make([]*goredis.StringCmd, 0, len(ops))
	var mget *goredis.SliceCmd
	var clock *goredis.TimeCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		if s.cluster == nil {
			mget = p.MGet(ctx, keys...)
		} else {
			for _, k := range keys {
				vals = append(vals, p.Get(ctx, k))
			}
		}
		if !s.cfg.callerClock {
			clock = p.Time(ctx)
		}
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return fmt.Errorf("redis: peek: %w", err)
	}
	if clock != nil {
		if err := clock.Err(); err != nil {
			return fmt.Errorf("redis: peek: TIME: %w", err)
		}
		now = clock.Val().UnixMicro()
	}
	for i := range ops {
		var raw string
		var ok bool
		if mget != nil {
			v := mget.Val()
			if len(v) != len(ops) {
				return fmt.Errorf("%w: MGET returned %d values for %d keys", ErrReply, len(v), len(ops))
			}
			if v[i] != nil {
				raw, ok = v[i].(string)
				if !ok {
					return fmt.Errorf("%w: MGET value of type %T", ErrReply, v[i])
				}
			}
		} else {
			v, err := vals[i].Result()
			switch {
			case err == nil:
				raw = v
			case !errors.Is(err, goredis.Nil):
				return fmt.Errorf("redis: peek: %w", err)
			}
		}
		st, err := parseState(raw)
		if err != nil {
			return fmt.Errorf("redis: peek %q: %w", ops[i].Key, err)
		}
		_, results[i] = algorithms.Apply(ops[i].Params, st, now, 0, algorithms.Normal)
	}
	return nil
}

// Inspect returns the state of key as the store keeps it and its remaining
// time to live, rounded to milliseconds by Redis. A key that does not
// exist has the zero State and a zero TTL.
func (s *Store) Inspect(ctx context.Context, key string) (algorithms.State, time.Duration, error) {
	if err := s.checkOpen(); err != nil {
		return algorithms.State{}, 0, err
	}
	k := s.redisKey(key)
	var get *goredis.StringCmd
	var ttl *goredis.DurationCmd
	_, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		get = p.Get(ctx, k)
		ttl = p.PTTL(ctx, k)
		return nil
	})
	if errors.Is(err, goredis.Nil) {
		return algorithms.State{}, 0, nil
	}
	if err != nil {
		return algorithms.State{}, 0, fmt.Errorf("redis: inspect: %w", err)
	}
	st, err := parseState(get.Val())
	if err != nil {
		return algorithms.State{}, 0, fmt.Errorf("redis: inspect %q: %w", key, err)
	}
	d := ttl.Val()
	if d < 0 {
		d = 0
	}
	return st, d, nil
}

// parseState reads a stored state, "s0 s1 s2"; "" is the zero State.
func parseState(raw string) (algorithms.State, error) {
	var st algorithms.State
	if raw == "" {
		return st, nil
	}
	b := []byte(raw)
	for i := range st {
		var ok bool
		st[i], b, ok = nextInt(b)
		if !ok {
			return algorithms.State{}, fmt.Errorf("%w: state %q", ErrReply, truncate([]byte(raw)))
		}
	}
	if len(b) != 0 {
		return algorithms.State{}, fmt.Errorf("%w: state %q", ErrReply, truncate([]byte(raw)))
	}
	return st, nil
}
