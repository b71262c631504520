package ledger

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/tollgate-go/tollgate/dimensions"
)

// Format is the format of an export.
type Format uint8

const (
	// CSV writes a header line, then one line per subject (RFC 4180).
	CSV Format = iota
	// JSON writes one JSON array with one object per subject.
	JSON
)

// ParseFormat returns the Format named s ("csv" or "json").
func ParseFormat(s string) (Format, bool) {
	switch s {
	case "csv":
		return CSV, true
	case "json":
		return JSON, true
	}
	return 0, false
}

// exportChunk is how many subjects an export reads in one store call.
const exportChunk = 128

// Row is one line of an export: the usage of one subject in one period.
type Row struct {
	// Period is the start of the period.
	Period time.Time `json:"period"`
	// Group is the group's name, as "tenant+model".
	Group string `json:"group"`
	// Subject maps each dimension of the group to its value. An API key,
	// and any value unsafe to keep as it is (longer than 256 bytes, not
	// UTF-8, or with line breaks), is "#" and 32 hex digits of its SHA-256.
	Subject map[string]string `json:"subject"`
	Usage
}

// Export writes the usage of every subject in the ledger's index for the
// period holding t to w, in format f, and returns the first error of the
// store or of w. It streams: it reads exportChunk subjects per store call
// and writes their rows before reading more, so its memory does not grow
// with the number of subjects. The index is per process (see
// WithIndexLimit): with a shared store, each instance lists the subjects
// it has seen, with the totals of all instances.
func (l *Ledger) Export(ctx context.Context, w io.Writer, f Format, t time.Time) error {
	p := l.periodStart(t.UnixMicro())
	ex := l.newExporter(w, f, p)
	if l.index != nil {
		pi := l.index.period(p)
		buf := make([]indexEntry, exportChunk)
		for from := 0; ; {
			n := l.index.chunk(pi, from, buf)
			if n == 0 {
				break
			}
			from += n
			for _, e := range buf[:n] {
				ex.add(e.group, e.tail)
			}
			if err := ex.flush(ctx); err != nil {
				return err
			}
		}
	}
	return ex.close()
}

// ExportSubjects is Export for the subjects subjects yields, such as every
// API key of the gateway's own database, indexed or not: it streams as
// Export does, consuming subjects as it writes. A subject of an unknown
// group or lacking a value stops the export with an error.
func (l *Ledger) ExportSubjects(ctx context.Context, w io.Writer, f Format, t time.Time, subjects iter.Seq[Subject]) error {
	p := l.periodStart(t.UnixMicro())
	ex := l.newExporter(w, f, p)
	for s := range subjects {
		tail, err := l.tail(&s)
		if err != nil {
			return err
		}
		g, _ := l.groupOf(s.Group)
		ex.add(g, tail)
		if len(ex.tails) == exportChunk {
			if err := ex.flush(ctx); err != nil {
				return err
			}
		}
	}
	if err := ex.flush(ctx); err != nil {
		return err
	}
	return ex.close()
}

// exporter writes the rows of one export, a chunk at a time.
type exporter struct {
	l      *Ledger
	f      Format
	period int64
	w      *bufio.Writer
	csv    *csv.Writer
	rows   int
	groups []int
	tails  []string
	usage  []Usage
	record []string
	err    error
}

func (l *Ledger) newExporter(w io.Writer, f Format, p int64) *exporter {
	ex := &exporter{l: l, f: f, period: p, w: bufio.NewWriterSize(w, 16<<10), usage: make([]Usage, exportChunk)}
	if f == CSV {
		ex.csv = csv.NewWriter(ex.w)
		header := []string{"period", "group"}
		for _, d := range l.dims {
			header = append(header, string(d))
		}
		header = append(header, "requests", "denials", "input_tokens", "output_tokens", "cost")
		ex.err = ex.csv.Write(header)
	} else {
		_, ex.err = ex.w.WriteString("[")
	}
	return ex
}

func (ex *exporter) add(group int, tail string) {
	ex.groups = append(ex.groups, group)
	ex.tails = append(ex.tails, tail)
}

// flush reads the usage of the pending subjects and writes their rows.
func (ex *exporter) flush(ctx context.Context) error {
	if ex.err != nil {
		return ex.err
	}
	if len(ex.tails) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ex.l.read(ctx, ex.period, ex.tails, ex.usage[:len(ex.tails)]); err != nil {
		ex.err = err
		return err
	}
	period := time.UnixMicro(ex.period).UTC()
	for i, tail := range ex.tails {
		values := parseTail(tail)
		g := ex.l.groups[ex.groups[i]]
		if ex.f == CSV {
			ex.record = append(ex.record[:0], period.Format(time.RFC3339), g.String())
			for _, d := range ex.l.dims {
				ex.record = append(ex.record, csvSafe(values[string(d)]))
			}
			u := &ex.usage[i]
			for _, v := range [...]int64{u.Requests, u.Denials, u.InputTokens, u.OutputTokens, u.Cost} {
				ex.record = append(ex.record, strconv.FormatInt(v, 10))
			}
			ex.err = ex.csv.Write(ex.record)
		} else {
			b, err := json.Marshal(Row{Period: period, Group: g.String(), Subject: values, Usage: ex.usage[i]})
			if err != nil {
				ex.err = err
				break
			}
			if ex.rows > 0 {
				ex.w.WriteString(",")
			}
			ex.w.WriteString("\n")
			_, ex.err = ex.w.Write(b)
		}
		if ex.err != nil {
			break
		}
		ex.rows++
	}
	ex.groups, ex.tails = ex.groups[:0], ex.tails[:0]
	if ex.err == nil && ex.csv != nil {
		ex.csv.Flush()
		ex.err = ex.csv.Error()
	}
	if ex.err == nil {
		ex.err = ex.w.Flush()
	}
	if ex.err != nil {
		ex.err = fmt.Errorf("ledger: export: %w", ex.err)
	}
	return ex.err
}

func (ex *exporter) close() error {
	if ex.err != nil {
		return ex.err
	}
	if ex.f == JSON {
		ex.w.WriteString("\n]\n")
	}
	if ex.csv != nil {
		ex.csv.Flush()
		if err := ex.csv.Error(); err != nil {
			return fmt.Errorf("ledger: export: %w", err)
		}
	}
	if err := ex.w.Flush(); err != nil {
		return fmt.Errorf("ledger: export: %w", err)
	}
	return nil
}

// csvSafe keeps a spreadsheet from reading a value as a formula.
func csvSafe(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

// parseTail decodes the dimension values of a key tail
// ("|name=value|..." as dimensions.AppendKey writes it).
func parseTail(tail string) map[string]string {
	out := map[string]string{}
	for part := range strings.SplitSeq(strings.TrimPrefix(tail, "|"), "|") {
		name, value, _ := strings.Cut(part, "=")
		out[unescape(name)] = unescape(value)
	}
	return out
}

func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ExportedValue returns value v of dimension d as exports show it: an API
// key (unless already in that form) and any value unsafe to keep as it is
// become "#" and 32 hex digits of their SHA-256.
func ExportedValue(d dimensions.Dimension, v string) string {
	if d == dimensions.APIKey {
		if h, ok := hashedKey(v); ok {
			return h
		}
	}
	return unescape(string(dimensions.AppendValue(nil, d, v)))
}
