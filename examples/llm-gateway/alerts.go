package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/tollgate-go/tollgate/limiter"
)

// budgetAlerts reports budgets (rules whose unit is cost) reaching 80% and
// 100% of their limit. The limiter calls crossed once per counter,
// threshold and window, even across gateways that share Redis; a real
// gateway would page someone or post to a webhook here.
type budgetAlerts struct {
	w io.Writer

	mu    sync.Mutex
	fired []alert
}

// alert is one budget alert, as the admin API lists it.
type alert struct {
	Rule      string    `json:"rule"`
	Counter   string    `json:"counter"`
	Threshold float64   `json:"threshold"`
	UsedUSD   string    `json:"used_usd"`
	LimitUSD  string    `json:"limit_usd"`
	At        time.Time `json:"at"`
}

// crossed is the limiter's threshold hook.
func (a *budgetAlerts) crossed(_ context.Context, e limiter.ThresholdEvent) {
	if e.Rule.Unit != limiter.Cost {
		return
	}
	al := alert{Rule: e.Rule.Name, Counter: e.Key, Threshold: e.Threshold,
		UsedUSD: usd(e.Used), LimitUSD: usd(e.Limit), At: time.Now().UTC()}
	fmt.Fprintf(a.w, "budget alert: %s reached %.0f%%: %s of %s USD (counter %s)\n",
		al.Rule, 100*al.Threshold, al.UsedUSD, al.LimitUSD, al.Counter)
	a.mu.Lock()
	a.fired = append(a.fired, al)
	a.mu.Unlock()
}

// list returns the alerts fired so far.
func (a *budgetAlerts) list() []alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]alert{}, a.fired...)
}

// usd formats an amount of micro-USD.
func usd(micros int64) string {
	return fmt.Sprintf("%d.%06d", micros/1e6, micros%1e6)
}
