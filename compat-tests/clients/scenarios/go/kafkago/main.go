// kafka-go 0.2.1 (Debian golang-github-segmentio-kafka-go-dev, GOPATH mode) against gregor.
//
//	kafkago-scenario group-consume|produce-consume BOOTSTRAP TOPIC [GROUP]
//
// kafka-go 0.2.1 has fixed API versions: CreateTopics v0, Metadata v1, Produce v2 (message
// format v1), Fetch v2, ListOffsets v1, FindCoordinator v0, JoinGroup v1, SyncGroup v0,
// Heartbeat v0, LeaveGroup v0, OffsetCommit v2, OffsetFetch v1. Writer and Reader keep their
// defaults: only Brokers, Topic (and GroupID / Partition) are set.
// Output: "PASS ..." / "FAIL ..." plus one line per failed check; exit 0/1.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	kafka "github.com/segmentio/kafka-go"
)

var (
	failures []string
	passed   int
	name     string
	checkMu  sync.Mutex
	logMu    sync.Mutex
	logLines []string
)

type logSink struct{}

func (logSink) Write(p []byte) (int, error) {
	logMu.Lock()
	logLines = append(logLines, strings.TrimRight(string(p), "\n"))
	logMu.Unlock()
	return len(p), nil
}

// check may be called from several goroutines (the partition readers of produce-consume).
func check(ok bool, format string, args ...interface{}) bool {
	checkMu.Lock()
	defer checkMu.Unlock()
	if ok {
		passed++
	} else {
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	return ok
}

func note(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func finish() {
	if len(failures) > 0 {
		fmt.Printf("FAIL %s: %d failed check(s), %d passed\n", name, len(failures), passed)
		for _, f := range failures {
			fmt.Printf("  - %s\n", f)
		}
		logMu.Lock()
		lines := logLines
		if len(lines) > 20 {
			lines = lines[len(lines)-20:]
		}
		fmt.Println("---- last kafka-go error log lines ----")
		fmt.Println(strings.Join(lines, "\n"))
		logMu.Unlock()
		os.Exit(1)
	}
	fmt.Printf("PASS %s: %d checks\n", name, passed)
	os.Exit(0)
}

func fatal(format string, args ...interface{}) {
	failures = append(failures, fmt.Sprintf(format, args...))
	finish()
}

// createTopic: Conn.CreateTopics sends CreateTopics v0 (timeout 0) to the bootstrap broker,
// then polls Metadata v1 until every partition has a leader.
func createTopic(bs, topic string, partitions int) {
	conn, err := kafka.Dial("tcp", bs)
	if err != nil {
		fatal("Dial(%s): %v", bs, err)
	}
	defer conn.Close()
	err = conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1})
	if err != nil {
		fatal("Conn.CreateTopics(%s) (CreateTopics v0): %v", topic, err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		parts, err := conn.ReadPartitions(topic)
		led := 0
		for _, p := range parts {
			if p.Leader.Port != 0 {
				led++
			}
		}
		if err == nil && len(parts) == partitions && led == partitions {
			break
		}
		if time.Now().After(deadline) {
			fatal("topic %s: %d partitions (%d led) in Metadata v1 after 15 s, want %d (last error %v)", topic, len(parts), led, partitions, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// CreateTopics of an existing topic: kafka-go maps TOPIC_ALREADY_EXISTS to nil itself.
	check(conn.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}) == nil,
		"CreateTopics of the existing %s: want TopicAlreadyExists (which kafka-go turns into nil)", topic)
}

func write(bs, topic, prefix string, from, n int) []string {
	w := kafka.NewWriter(kafka.WriterConfig{Brokers: []string{bs}, Topic: topic,
		ErrorLogger: log.New(logSink{}, "[writer] ", log.Lmicroseconds)})
	var msgs []kafka.Message
	var keys []string
	for i := from; i < from+n; i++ {
		k := fmt.Sprintf("%s-%03d", prefix, i)
		keys = append(keys, k)
		msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte("value of " + k)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		fatal("Writer.WriteMessages(%d messages) (Produce v2): %v", n, err)
	}
	if err := w.Close(); err != nil {
		check(false, "Writer.Close: %v", err)
	}
	return keys
}

type got struct {
	key       string
	partition int
	offset    int64
}

// checkLog: each key once, values intact, offsets contiguous from `base` per partition.
func checkRead(msgs []got, want []string, what string) {
	seen := map[string]int{}
	for _, m := range msgs {
		seen[m.key]++
	}
	var missing, dup, extra []string
	wantSet := map[string]bool{}
	for _, k := range want {
		wantSet[k] = true
		if seen[k] == 0 {
			missing = append(missing, k)
		}
	}
	for k, n := range seen {
		if n > 1 {
			dup = append(dup, k)
		}
		if !wantSet[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(dup)
	sort.Strings(extra)
	check(len(missing) == 0, "%s: %d of %d messages missing (first %v)", what, len(missing), len(want), first(missing))
	check(len(dup) == 0, "%s: %d messages read more than once (first %v)", what, len(dup), first(dup))
	check(len(extra) == 0, "%s: %d unexpected messages (first %v)", what, len(extra), first(extra))
}

func first(s []string) []string {
	if len(s) > 5 {
		return s[:5]
	}
	return s
}

func contiguous(msgs []got, what string) {
	byPart := map[int][]int64{}
	for _, m := range msgs {
		byPart[m.partition] = append(byPart[m.partition], m.offset)
	}
	for p, offs := range byPart {
		sort.Slice(offs, func(i, j int) bool { return offs[i] < offs[j] })
		for i, o := range offs {
			if !check(o == int64(i), "%s: partition %d offsets %v, want 0..%d", what, p, offs, len(offs)-1) {
				break
			}
		}
	}
}

// readGroup reads with a group Reader (ReadMessage = fetch + synchronous OffsetCommit v2 per
// message, CommitInterval 0 by default) until `want` messages or the deadline, then closes
// it (LeaveGroup). A short extra read catches anything delivered beyond what was expected.
func readGroup(bs, topic, group string, want int, deadline time.Duration) ([]got, []string) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bs}, Topic: topic, GroupID: group,
		ErrorLogger: log.New(logSink{}, "[reader] ", log.Lmicroseconds)})
	var out []got
	var errs []string
	end := time.Now().Add(deadline)
	read := func(until time.Time) bool {
		ctx, cancel := context.WithDeadline(context.Background(), until)
		defer cancel()
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				errs = append(errs, err.Error())
			}
			return false
		}
		if string(m.Value) != "value of "+string(m.Key) {
			check(false, "message %s: value %q", m.Key, m.Value)
		}
		out = append(out, got{string(m.Key), m.Partition, m.Offset})
		return true
	}
	for len(out) < want && time.Now().Before(end) {
		read(end)
	}
	for read(time.Now().Add(500 * time.Millisecond)) {
	}
	st := r.Stats()
	if err := r.Close(); err != nil {
		check(false, "Reader.Close: %v", err)
	}
	if st.Errors > 0 {
		errs = append(errs, fmt.Sprintf("reader stats: %d errors", st.Errors))
	}
	return out, errs
}

func scenarioGroup(bs, topic, group string) {
	createTopic(bs, topic, 3)
	keys := write(bs, topic, "m", 0, 100)
	note("wrote 100 messages with the default Writer")
	// kafka-go 0.2.1 starts a group with no committed offset at FirstOffset.
	msgs, errs := readGroup(bs, topic, group, 100, 20*time.Second)
	note("reader 1 read %d messages", len(msgs))
	checkRead(msgs, keys, "reader 1 (group)")
	contiguous(msgs, "reader 1 (group)")
	check(len(errs) == 0, "reader 1 errors: %v", errs)

	// 5 more; a second Reader of the group must read exactly those (nothing of reader 1's).
	// kafka-go 0.2.1's Reader.Close sends no LeaveGroup (it dials the coordinator with the
	// context it has just cancelled), so reader 2's JoinGroup waits, as with Kafka, for the
	// departed member until the group's rebalance timeout: kafka-go's default 30 s.
	more := write(bs, topic, "n", 100, 5)
	msgs2, errs2 := readGroup(bs, topic, group, 5, 40*time.Second)
	note("reader 2 read %d messages", len(msgs2))
	old := 0
	for _, m := range msgs2 {
		if strings.HasPrefix(m.key, "m-") {
			old++
		}
	}
	check(old == 0, "reader 2: %d messages of reader 1 delivered again (commits lost?)", old)
	checkRead(msgs2, more, "reader 2 (same group)")
	check(len(errs2) == 0, "reader 2 errors: %v", errs2)
}

// produce-consume: the default Writer, then one partition Reader per partition (no group:
// ListOffsets v1 + Fetch v2 from FirstOffset) up to the high watermark. The three readers run
// at the same time: a default Reader asks for MinBytes = MaxBytes = 1 MB with MaxWait 10 s
// (max_wait 8999 ms on the wire after kafka-go's 1 s RTT allowance), and the broker, as Kafka
// does, holds a Fetch until min_bytes or max_wait; with ~2 KB per partition every reader's first
// Fetch is answered after ~9 s, which one after the other cost ~28 s.
func scenarioProduceConsume(bs, topic string) {
	createTopic(bs, topic, 3)
	keys := write(bs, topic, "m", 0, 100)
	parts := make([][]got, 3)
	var wg sync.WaitGroup
	for p := 0; p < 3; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			parts[p] = readPartition(bs, topic, p)
		}(p)
	}
	wg.Wait()
	var all []got
	for _, msgs := range parts {
		all = append(all, msgs...)
	}
	checkRead(all, keys, "partition readers")
	contiguous(all, "partition readers")
}

// readPartition: ReadOffsets (ListOffsets v1), then a default partition Reader up to the last offset.
func readPartition(bs, topic string, p int) []got {
	conn, err := kafka.DialLeader(context.Background(), "tcp", bs, topic, p)
	if !check(err == nil, "DialLeader(partition %d): %v", p, err) {
		return nil
	}
	first, last, err := conn.ReadOffsets() // ListOffsets v1
	conn.Close()
	if !check(err == nil && first == 0, "partition %d: ReadOffsets (ListOffsets v1) = %d..%d, %v", p, first, last, err) {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{bs}, Topic: topic, Partition: p,
		ErrorLogger: log.New(logSink{}, "[reader] ", log.Lmicroseconds)})
	// Close waits for the fetch in flight (MaxWait, 10 s by default): not worth waiting for
	// here, a partition reader commits nothing.
	defer func() { go r.Close() }()
	end := time.Now().Add(15 * time.Second)
	var msgs []got
	for n := int64(0); n < last; n++ {
		ctx, cancel := context.WithDeadline(context.Background(), end)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			check(false, "partition %d: %d of %d messages read (Fetch v2): %v", p, n, last, err)
			break
		}
		check(string(m.Value) == "value of "+string(m.Key), "message %s: value %q", m.Key, m.Value)
		msgs = append(msgs, got{string(m.Key), m.Partition, m.Offset})
	}
	return msgs
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: kafkago-scenario group-consume|produce-consume BOOTSTRAP TOPIC [GROUP]")
		os.Exit(2)
	}
	mode, bs, topic := os.Args[1], os.Args[2], os.Args[3]
	name = "kafka-go 0.2.1 " + mode
	start := time.Now()
	switch mode {
	case "group-consume":
		if len(os.Args) < 5 {
			fatal("group-consume needs a GROUP argument")
		}
		scenarioGroup(bs, topic, os.Args[4])
	case "produce-consume":
		scenarioProduceConsume(bs, topic)
	default:
		fatal("unknown mode %q", mode)
	}
	note("took %.1fs", time.Since(start).Seconds())
	finish()
}
