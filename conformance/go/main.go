// Command kcgo drives franz-go (kgo, kadm) and IBM/sarama for the kafka-compat conformance
// scenarios (conformance/test_franz_go_*.py and test_sarama_*.py, through conformance/golang.py).
// `make test-deps` builds it into conformance/go/bin/kcgo.
//
//	kcgo CLIENT COMMAND BOOTSTRAP ARGS... [--flag=value ...]
//
// CLIENT is franz-go or sarama. Every command prints JSON on stdout and logs nothing else there:
//
//	produce TOPIC [--codec=C] [--chunk=N]  the records on stdin (JSON, as conformance/support.py's
//	                                       records_json) with acks=all and an idempotent producer, N
//	                                       records a synchronous send; prints {"offsets": [[partition,
//	                                       offset], ...]} in input order, or {"error": ...} (exit 1)
//	read TOPIC STARTS COUNT                COUNT records from the partitions and offsets in STARTS
//	                                       ({"partition": offset}), no group; prints {"records": [...]}
//	member TOPIC GROUP NAME [--protocol=P] a consumer-group member (cooperative-sticky; P=consumer:
//	                                       KIP-848) reporting JSON lines as conformance/groups.py reads
//	                                       them; SIGTERM closes it (it leaves the group)
//	admin | consumer TOPIC GROUP | seeker TOPIC
//	                                       a session: one JSON command a line on stdin ({"op": ...}),
//	                                       one JSON answer a line on stdout (the op tables are at
//	                                       franzAdmin, franzConsumer and franzSeeker)
//
// An error as data is {"code": Kafka error code or null, "name": the client's name for it or null,
// "message": the client's text}.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// timeout bounds every wait of a command, so a broken broker fails a scenario instead of hanging it.
const timeout = 15 * time.Second

// rec is a record as the scenarios send and see it: keys, values and header values as UTF-8 text,
// null kept null; timestamp is CreateTime in ms (null: the client's own).
type rec struct {
	Partition int32       `json:"partition"`
	Offset    int64       `json:"offset"`
	Key       *string     `json:"key"`
	Value     *string     `json:"value"`
	Headers   [][2]string `json:"headers"`
	Timestamp *int64      `json:"timestamp"`
}

func text(b []byte) *string {
	if b == nil {
		return nil
	}
	s := string(b)
	return &s
}

func bytesOf(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

type errInfo struct {
	Code    *int16  `json:"code"`
	Name    *string `json:"name"`
	Message string  `json:"message"`
}

type args struct {
	pos   []string
	flags map[string]string
}

func parseArgs(in []string) args {
	a := args{flags: map[string]string{}}
	for _, s := range in {
		if name, ok := strings.CutPrefix(s, "--"); ok {
			k, v, _ := strings.Cut(name, "=")
			a.flags[k] = v
		} else {
			a.pos = append(a.pos, s)
		}
	}
	return a
}

func (a args) flag(name, def string) string {
	if v, ok := a.flags[name]; ok {
		return v
	}
	return def
}

func (a args) int(name string, def int) int {
	n, err := strconv.Atoi(a.flag(name, strconv.Itoa(def)))
	if err != nil {
		fail(fmt.Errorf("--%s: %w", name, err))
	}
	return n
}

// A client's commands, and the error mapping that turns its errors into errInfo.
type driver struct {
	commands map[string]func(ctx context.Context, bootstrap string, a args) any
	errorOf  func(error) errInfo
}

var drivers = map[string]driver{"franz-go": franz, "sarama": saramaDriver}

var current driver

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: kcgo franz-go|sarama COMMAND BOOTSTRAP ARGS...")
		os.Exit(2)
	}
	d, ok := drivers[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown client %q\n", os.Args[1])
		os.Exit(2)
	}
	current = d
	cmd, ok := d.commands[os.Args[2]]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown command %q\n", os.Args[2])
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	out := cmd(ctx, os.Args[3], parseArgs(os.Args[4:]))
	if out != nil {
		emit(out)
	}
}

var stdout sync.Mutex

// emit writes one JSON line (whole, whichever goroutine calls).
func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	stdout.Lock()
	defer stdout.Unlock()
	os.Stdout.Write(append(b, '\n'))
}

// fail prints the error as data and exits 1.
func fail(err error) {
	emit(map[string]any{"error": current.errorOf(err)})
	os.Exit(1)
}

func failure(err error) map[string]any {
	return map[string]any{"error": current.errorOf(err)}
}

func readRecords() []rec {
	var recs []rec
	if err := json.NewDecoder(os.Stdin).Decode(&recs); err != nil {
		fail(fmt.Errorf("records on stdin: %w", err))
	}
	return recs
}

// partitionOffsets parses {"partition": number} (JSON object keys are strings).
func partitionOffsets(raw map[string]int64) map[int32]int64 {
	out := make(map[int32]int64, len(raw))
	for k, v := range raw {
		p, err := strconv.Atoi(k)
		if err != nil {
			fail(fmt.Errorf("partition %q: %w", k, err))
		}
		out[int32(p)] = v
	}
	return out
}

// command is one line of a session: the op and its arguments, all optional but the op.
type command struct {
	Op         string            `json:"op"`
	N          int               `json:"n"`
	Name       string            `json:"name"`
	Names      []string          `json:"names"`
	Partitions int32             `json:"partitions"`
	Topic      string            `json:"topic"`
	Parts      []int32           `json:"parts"`
	RF         int16             `json:"rf"`
	Configs    map[string]string `json:"configs"`
	Keys       []string          `json:"keys"`
	Delete     []string          `json:"delete"`
	Increment  bool              `json:"incremental"`
	Offsets    map[string]int64  `json:"offsets"`
	Times      map[string]int64  `json:"times"`
	Spec       string            `json:"spec"`
	Commits    map[string]struct {
		Offset   int64  `json:"offset"`
		Metadata string `json:"metadata"`
	} `json:"commits"`
}

// session answers one JSON command a line with one JSON line until stdin ends or an op returns
// done; an unknown op answers an error.
func session(ops map[string]func(command) any) {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		var c command
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fail(fmt.Errorf("command %q: %w", in.Text(), err))
		}
		op, ok := ops[c.Op]
		if !ok {
			emit(map[string]any{"error": errInfo{Message: "unknown op " + c.Op}})
			continue
		}
		emit(op(c))
		if c.Op == "close" {
			return
		}
	}
}

// reporter writes a group member's events (conformance/groups.py's Member reads them).
type reporter struct {
	assigned map[int32]bool
	last     string
}

func newReporter() *reporter { return &reporter{assigned: map[int32]bool{}} }

// report emits the whole assignment when it changed.
func (r *reporter) report() {
	parts := []int32{}
	for p := range r.assigned {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	b, _ := json.Marshal(parts)
	if string(b) != r.last {
		r.last = string(b)
		emit(map[string]any{"assigned": parts})
	}
}

func mustJSON(s string, v any) {
	if err := json.Unmarshal([]byte(s), v); err != nil {
		fail(fmt.Errorf("%q: %w", s, err))
	}
}

// consumed buffers what a session's group member consumed, as [partition, offset, value], until
// a consume op takes it.
type consumed struct {
	mu   sync.Mutex
	recs [][3]any
}

func (c *consumed) add(partition int32, offset int64, value []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, [3]any{partition, offset, text(value)})
}

// take answers a consume op: once n records are there (or the timeout passed), and 300 ms later,
// so that a duplicate arriving right behind them shows, everything buffered.
func (c *consumed) take(n int) any {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		have := len(c.recs)
		c.mu.Unlock()
		if have >= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.recs
	c.recs = [][3]any{}
	return map[string]any{"records": out}
}
