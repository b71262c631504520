package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tollgate-go/tollgate/algorithms"
	"github.com/tollgate-go/tollgate/store"
)

// Decision is one batch of [Store.ApplyMany]: the ops of one decision,
// room for their results, and the error, if any, that kept it from being
// decided.
type Decision struct {
	// Ops are applied as one batch, as by [Store.Apply].
	Ops []store.Op
	// Results receives one result per op; at least len(Ops) long.
	Results []algorithms.Result
	// Err is set by ApplyMany when this decision could not be decided.
	Err error
}

// ApplyMany applies many independent decisions in one pipeline: one round
// trip for all of them on a single node, one per node in parallel on a
// Cluster. Each decision is a batch with the guarantees of [Store.Apply];
// one decision's denial or error does not affect the others. It sets each
// decision's Err and returns the first of them, or [store.ErrClosed].
func (s *Store) ApplyMany(ctx context.Context, now int64, decisions []Decision) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := s.checkNow(now); err != nil {
		for i := range decisions {
			decisions[i].Err = err
		}
		return err
	}
	for i := range decisions {
		d := &decisions[i]
		d.Err = nil
		if err := store.Validate(d.Ops, d.Results); err != nil {
			d.Err = fmt.Errorf("redis: %w", err)
		}
	}
	s.applyDecisions(ctx, now, decisions)
	for i := range decisions {
		if decisions[i].Err != nil {
			return decisions[i].Err
		}
	}
	return nil
}

// group is the ops of one decision that share a slot: one script call.
type group struct {
	dec  int   // index of the decision
	idx  []int // indexes of its ops in the decision
	c    *call
	cmd  *goredis.ZeroCopyStringCmd
	res  []algorithms.Result
	err  error
	done bool  // the script committed this group
	node *node // its Cluster master, when known
	held bool  // not sent: the node's breaker is open
}

// applyDecisions runs every valid decision's groups in one pipeline, then
// refunds, in a second pipeline, the groups that committed in decisions
// that did not (a Cluster decision spanning slots).
func (s *Store) applyDecisions(ctx context.Context, now int64, decisions []Decision) {
	var groups []*group
	for di := range decisions {
		d := &decisions[di]
		if d.Err != nil || len(d.Ops) == 0 {
			continue
		}
		if s.cluster == nil {
			groups = append(groups, &group{dec: di})
			continue
		}
		bySlot := make(map[int]*group)
		var buf []byte
		for i := range d.Ops {
			var slot int
			slot, buf = s.opSlot(buf, d.Ops[i].Key)
			g := bySlot[slot]
			if g == nil {
				g = &group{dec: di}
				bySlot[slot] = g
				groups = append(groups, g)
			}
			g.idx = append(g.idx, i)
		}
	}
	if len(groups) == 0 {
		return
	}
	for _, g := range groups {
		d := &decisions[g.dec]
		g.c = s.getCall()
		g.c.build(s, now, d.Ops, g.idx, false)
	}
	defer func() {
		for _, g := range groups {
			s.putCall(g.c)
		}
	}()
	s.runGroups(ctx, groups)
	for _, g := range groups {
		if g.err != nil {
			continue
		}
		d := &decisions[g.dec]
		n := len(d.Ops)
		if g.idx != nil {
			n = len(g.idx)
		}
		g.res = make([]algorithms.Result, n)
		g.done, g.err = parseReply(g.cmd.Bytes(), g.res)
	}
	// Scatter results; find decisions that must be undone.
	admitted := make([]bool, len(decisions))
	for di := range decisions {
		admitted[di] = decisions[di].Err == nil
	}
	for _, g := range groups {
		d := &decisions[g.dec]
		if g.err != nil {
			if d.Err == nil {
				d.Err = g.err
			}
			admitted[g.dec] = false
			continue
		}
		if !g.done {
			admitted[g.dec] = false
		}
		for j := range g.res {
			i := j
			if g.idx != nil {
				i = g.idx[j]
			}
			d.Results[i] = g.res[j]
		}
	}
	var refunds []*group
	for _, g := range groups {
		if g.err != nil || !g.done || admitted[g.dec] {
			continue
		}
		d := &decisions[g.dec]
		var charged []int
		for j, r := range g.res {
			i := j
			if g.idx != nil {
				i = g.idx[j]
			}
			if r.Allowed && d.Ops[i].Cost != 0 {
				charged = append(charged, i)
			}
		}
		if len(charged) == 0 {
			continue
		}
		rg := &group{dec: g.dec, idx: charged, c: s.getCall()}
		rg.c.build(s, now, d.Ops, charged, true)
		refunds = append(refunds, rg)
	}
	if len(refunds) == 0 {
		return
	}
	defer func() {
		for _, g := range refunds {
			s.putCall(g.c)
		}
	}()
	s.runGroups(ctx, refunds)
	for _, g := range refunds {
		if g.err != nil && decisions[g.dec].Err == nil {
			decisions[g.dec].Err = fmt.Errorf("redis: refunding a partly committed decision: %w", g.err)
		}
	}
}

// runGroups sends every group's script call in one pipeline, and again
// with EVAL those that met NOSCRIPT.
func (s *Store) runGroups(ctx context.Context, groups []*group) {
	if len(groups) == 1 {
		g := groups[0]
		g.cmd, g.err = s.run(ctx, g.c)
		return
	}
	exec := func(gs []*group) {
		pipe := s.client.Pipeline()
		for _, g := range gs {
			g.cmd = goredis.NewZeroCopyStringCmd(ctx, g.c.reply, g.c.args...)
			_ = pipe.Process(ctx, g.cmd)
		}
		_, _ = pipe.Exec(ctx)
		for _, g := range gs {
			if g.err = g.cmd.Err(); g.err != nil {
				s.noteFailure(ctx, g.err)
			}
		}
	}
	var send []*group
	for _, g := range groups {
		g.node = s.nodeFor(ctx, g.c.strs[0])
		if g.held = !g.node.allow(); g.held {
			g.err = ErrNodeDown
			continue
		}
		send = append(send, g)
	}
	if len(send) > 0 {
		exec(send)
	}
	var again []*group
	for _, g := range groups {
		if g.err != nil && isNoScript(g.err) {
			g.c.useEval()
			again = append(again, g)
		}
	}
	if len(again) > 0 {
		exec(again)
	}
	for try := 0; try < tryAgainAttempts; try++ {
		again = again[:0]
		for _, g := range groups {
			if g.err != nil && isTryAgain(g.err) {
				again = append(again, g)
			}
		}
		if len(again) == 0 || !pause(ctx, tryAgainPause) {
			break
		}
		exec(again)
	}
	for _, g := range groups {
		if !g.held && !errors.Is(g.err, context.Canceled) {
			g.node.record(g.err)
		}
	}
	for _, g := range groups {
		if g.err != nil {
			g.err = fmt.Errorf("redis: apply: %w", s.nodeError(g.node, g.err))
		}
	}
}
