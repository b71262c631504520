// Command report runs tollgate's benchmark suite and checks every budget
// that package benchmarks holds.
//
// It compiles the suite once, then runs each benchmark in its own process,
// -count rounds, alternating the order from one round to the next, so that
// a benchmark and its baseline run close together in time and machine
// noise hits both. Each figure is the median of its rounds; each ratio is
// the median of the per-round ratios. It prints a table and exits with
// status 1 when a budget is missed by more than its tolerance (or its
// benchmark gave no figure), 2 when the suite could not run.
//
// Usage:
//
//	go run ./benchmarks/report [-short] [-count n] [-benchtime d] [-run regexp] [-redis=false] [-raw file] [-check=false]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tollgate-go/tollgate/benchmarks"
)

func main() {
	var (
		short     = flag.Bool("short", false, "a quick smoke run for CI: -count 3 -benchtime 100ms unless set")
		count     = flag.Int("count", 5, "rounds per benchmark; figures are medians over them")
		benchtime = flag.String("benchtime", "1s", "go test -benchtime per run")
		run       = flag.String("run", "", "only budgets whose name matches this regexp")
		useRedis  = flag.Bool("redis", true, "run the Redis budgets (skipped, with a note, when redis-server is not installed)")
		rawPath   = flag.String("raw", "", "append the raw benchmark output to this file (for benchstat)")
		check     = flag.Bool("check", true, "exit 1 when a budget is missed; -check=false only reports (exit 2 still means the suite could not run)")
	)
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *short {
		if !set["count"] {
			*count = 3
		}
		if !set["benchtime"] {
			*benchtime = "100ms"
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	code, err := report(ctx, os.Stdout, config{count: *count, benchtime: *benchtime, run: *run, redis: *useRedis, rawPath: *rawPath})
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	if !*check {
		code = 0
	}
	os.Exit(code)
}

type config struct {
	count     int
	benchtime string
	run       string
	redis     bool
	rawPath   string
}

func report(ctx context.Context, w io.Writer, cfg config) (int, error) {
	if cfg.count < 1 {
		return 0, fmt.Errorf("-count %d: want at least 1", cfg.count)
	}
	var match *regexp.Regexp
	if cfg.run != "" {
		var err error
		if match, err = regexp.Compile(cfg.run); err != nil {
			return 0, fmt.Errorf("-run: %w", err)
		}
	}
	var notes []string
	redisReason := ""
	if !cfg.redis {
		redisReason = "-redis=false"
	} else if _, err := exec.LookPath("redis-server"); err != nil {
		redisReason = "redis-server is not installed"
	}
	if redisReason != "" {
		notes = append(notes, "Redis budgets skipped: "+redisReason)
	}

	var budgets []benchmarks.Budget
	benchtimes := map[string]string{} // benchmark name -> -benchtime
	var order []string                // distinct benchmarks, in budget order
	skipped := map[string]string{}    // budget name -> why
	for _, b := range benchmarks.Budgets() {
		if match != nil && !match.MatchString(b.Name) {
			continue
		}
		budgets = append(budgets, b)
		if b.Redis && redisReason != "" {
			skipped[b.Name] = redisReason
			continue
		}
		for _, name := range []string{b.Benchmark, b.Baseline} {
			if name == "" {
				continue
			}
			if _, ok := benchtimes[name]; !ok {
				order = append(order, name)
				benchtimes[name] = cfg.benchtime
			}
			if b.Benchtime != "" {
				benchtimes[name] = b.Benchtime
			}
		}
	}
	if len(budgets) == 0 {
		return 0, fmt.Errorf("-run %q matches no budget", cfg.run)
	}

	var raw io.Writer
	if cfg.rawPath != "" {
		f, err := os.OpenFile(cfg.rawPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		raw = f
	}
	tmp, err := os.MkdirTemp("", "tollgate-report-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)

	start := time.Now()
	loadBefore := loadAverage()
	runs := Runs{}
	benchSkipped := map[string]string{} // benchmark name -> why
	benchFailed := map[string]string{}  // benchmark name -> its messages
	if len(order) > 0 {
		bin, err := build(ctx, tmp)
		if err != nil {
			return 0, err
		}
		for round := range cfg.count {
			names := slices.Clone(order)
			if round%2 == 1 {
				slices.Reverse(names)
			}
			fmt.Fprintf(os.Stderr, "round %d/%d: %d benchmarks\n", round+1, cfg.count, len(names))
			for _, name := range names {
				if _, ok := benchSkipped[name]; ok {
					continue
				}
				if _, ok := benchFailed[name]; ok {
					continue
				}
				out, err := bin.run(ctx, name, benchtimes[name], raw)
				if err != nil {
					return 0, err
				}
				for _, r := range out.Results {
					runs.Add(round, cfg.count, r)
				}
				if len(out.Results) > 0 {
					continue
				}
				for n, why := range out.Skipped {
					if n == name || strings.HasPrefix(name, n+"/") {
						benchSkipped[name] = why
					}
				}
				for n, why := range out.Failed {
					if n == name || strings.HasPrefix(name, n+"/") {
						benchFailed[name] = why
					}
				}
			}
		}
	}

	rows := make([]Row, len(budgets))
	for i, b := range budgets {
		if why, ok := skipped[b.Name]; ok {
			rows[i] = SkippedRow(b, why)
			continue
		}
		if why, ok := benchSkipped[b.Benchmark]; ok {
			rows[i] = SkippedRow(b, why)
			continue
		}
		rows[i] = Evaluate(b, runs)
		for _, name := range []string{b.Benchmark, b.Baseline} {
			if why, ok := benchFailed[name]; ok && rows[i].Verdict == NoData {
				rows[i].Why = name + " failed: " + why
			}
		}
	}
	fmt.Fprintf(w, "tollgate benchmark budgets, %s, %s %s/%s, GOMAXPROCS=%d\n",
		start.UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "%d rounds of -benchtime %s, interleaved; medians. Load average before: %s, after: %s. Took %s.\n\n",
		cfg.count, cfg.benchtime, loadBefore, loadAverage(), time.Since(start).Round(time.Second))
	code := WriteTable(w, rows)
	for _, n := range notes {
		fmt.Fprintln(w, "note:", n)
	}
	return code, nil
}

// WriteTable prints the rows and returns the exit status they call for.
func WriteTable(w io.Writer, rows []Row) int {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "budget\tissue\tfigure\tbaseline\tratio\tallocs\tbound\tholds?")
	code := 0
	for _, r := range rows {
		b := r.Budget
		metric := b.MetricName()
		ratio := num(r.Ratio, func(v float64) string { return fmt.Sprintf("%.2f×", v) })
		if b.Kind == benchmarks.Added {
			ratio = num(r.Added, func(v float64) string { return "+" + benchmarks.FormatAmount(v, metric) })
		}
		verdict := r.Verdict.String()
		if r.Why != "" {
			verdict += " (" + r.Why + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.Issue,
			num(r.Figure, func(v float64) string { return benchmarks.FormatAmount(v, metric) }),
			num(r.Base, func(v float64) string { return benchmarks.FormatAmount(v, metric) }),
			ratio, num(r.Allocs, func(v float64) string { return fmt.Sprintf("%.0f", v) }),
			b.Bound(), verdict)
		if r.Verdict.Failing() {
			code = 1
		}
	}
	tw.Flush()
	return code
}

func num(v float64, f func(float64) string) string {
	if math.IsNaN(v) {
		return "-"
	}
	return f(v)
}

// loadAverage returns the 1-minute load average, or "?" where /proc has none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}
