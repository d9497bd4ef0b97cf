// sarama 1.22.1 (Debian golang-github-shopify-sarama-dev, GOPATH mode) against gregor.
//
//	sarama-scenario admin|produce-consume|group-consume BOOTSTRAP TOPIC [GROUP]
//
// Every client keeps sarama's defaults (NewConfig / a nil config) except where sarama itself
// refuses an operation below some Version: then the LOWEST Version it accepts is set, and the
// program says so. Output: "PASS ..." / "FAIL ..." plus one line per failed check, exit 0/1.
// sarama's own log goes to a buffer that is printed (last lines) only when something failed.
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"context"

	"github.com/Shopify/sarama"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	saramaLog = &syncBuf{}
	failures  []string
	passed    int
	name      string
)

func check(ok bool, format string, args ...interface{}) bool {
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
		lines := strings.Split(strings.TrimSpace(saramaLog.String()), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		fmt.Println("---- last sarama log lines ----")
		fmt.Println(strings.Join(lines, "\n"))
		os.Exit(1)
	}
	fmt.Printf("PASS %s: %d checks\n", name, passed)
	os.Exit(0)
}

func fatal(format string, args ...interface{}) {
	failures = append(failures, fmt.Sprintf(format, args...))
	finish()
}

// configAt is sarama's default configuration with only Version raised (see the callers).
func configAt(v sarama.KafkaVersion) *sarama.Config {
	c := sarama.NewConfig()
	c.Version = v
	return c
}

// createTopic: ClusterAdmin needs Version >= V0_10_0_0 (client.Controller() refuses below),
// CreateTopics v0 (what sarama sends below V0_11_0_0) needs V0_10_1_0: the lowest that works.
func createTopic(bs []string, topic string, partitions int32, configs map[string]*string) {
	admin, err := sarama.NewClusterAdmin(bs, configAt(sarama.V0_10_1_0))
	if err != nil {
		fatal("NewClusterAdmin(Version V0_10_1_0): %v", err)
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1,
		ConfigEntries: configs}, false)
	if err != nil {
		fatal("ClusterAdmin.CreateTopic(%s) (CreateTopics v0): %v", topic, err)
	}
}

type rec struct {
	key       string
	partition int32
	offset    int64
}

// produce sends n messages with sarama.NewSyncProducer(addrs, nil): the nil config is sarama's
// default (Version V0_8_2_0: Produce v0, message format v0) with Return.Successes on.
func produce(bs []string, topic, prefix string, from, n int) []rec {
	p, err := sarama.NewSyncProducer(bs, nil)
	if err != nil {
		fatal("NewSyncProducer(default config): %v", err)
	}
	defer p.Close()
	var out []rec
	for i := from; i < from+n; i++ {
		key := fmt.Sprintf("%s-%03d", prefix, i)
		part, off, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key),
			Value: sarama.StringEncoder("value of " + key)})
		if err != nil {
			fatal("SyncProducer.SendMessage(%s) (Produce v0): %v", key, err)
		}
		out = append(out, rec{key, part, off})
	}
	return out
}

func sortRecs(r []rec) []rec {
	c := append([]rec(nil), r...)
	sort.Slice(c, func(i, j int) bool {
		if c[i].partition != c[j].partition {
			return c[i].partition < c[j].partition
		}
		return c[i].offset < c[j].offset
	})
	return c
}

func sameRecs(got, want []rec, what string) {
	g, w := sortRecs(got), sortRecs(want)
	if len(g) != len(w) {
		check(false, "%s: got %d messages, want %d (first got: %v)", what, len(g), len(w), head(g))
		return
	}
	for i := range g {
		if !check(g[i] == w[i], "%s: message %d is %+v, want %+v", what, i, g[i], w[i]) {
			return
		}
	}
}

func head(r []rec) []rec {
	if len(r) > 5 {
		return r[:5]
	}
	return r
}

func checkProduced(recs []rec, partitions int32) {
	next := map[int32]int64{}
	for _, r := range recs {
		if !check(r.partition >= 0 && r.partition < partitions && r.offset == next[r.partition],
			"produce: %s got partition %d offset %d, want offset %d (contiguous from 0)", r.key, r.partition, r.offset, next[r.partition]) {
			return
		}
		next[r.partition]++
	}
}

// ---- admin ---------------------------------------------------------------------------------

func scenarioAdmin(bs []string, topic string) {
	retention := "3600000"
	createTopic(bs, topic, 3, map[string]*string{"retention.ms": &retention})
	note("created %s via ClusterAdmin (Version V0_10_1_0: CreateTopics v0)", topic)

	// DescribeConfigs v0 needs Version >= V0_11_0_0 (sarama refuses lower): the lowest that works.
	admin, err := sarama.NewClusterAdmin(bs, configAt(sarama.V0_11_0_0))
	if err != nil {
		fatal("NewClusterAdmin(Version V0_11_0_0): %v", err)
	}
	defer admin.Close()
	err = admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 3, ReplicationFactor: 1}, false)
	te, ok := err.(*sarama.TopicError)
	check(ok && te.Err == sarama.ErrTopicAlreadyExists, "re-create (CreateTopics v1): got %v, want ErrTopicAlreadyExists", err)

	deadline := time.Now().Add(15 * time.Second)
	var topics map[string]sarama.TopicDetail
	for {
		topics, err = admin.ListTopics() // Metadata v0 + DescribeConfigs v0 for every topic
		if err == nil && topics[topic].NumPartitions == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if check(err == nil, "ListTopics (Metadata v0 + DescribeConfigs v0): %v", err) {
		d, ok := topics[topic]
		check(ok, "ListTopics: %s missing (%d topics listed)", topic, len(topics))
		check(d.NumPartitions == 3 && d.ReplicationFactor == 1, "ListTopics: %s has %d partitions, RF %d; want 3, 1", topic, d.NumPartitions, d.ReplicationFactor)
		for p := int32(0); p < 3; p++ {
			check(len(d.ReplicaAssignment[p]) == 1, "ListTopics: partition %d replicas %v", p, d.ReplicaAssignment[p])
		}
		v := d.ConfigEntries["retention.ms"]
		check(v != nil && *v == retention, "ListTopics: non-default configs of %s = %v, want retention.ms=%s", topic, strEntries(d.ConfigEntries), retention)
	}

	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
	if check(err == nil, "DescribeConfig(topic) (DescribeConfigs v0): %v", err) {
		found := map[string]sarama.ConfigEntry{}
		for _, e := range entries {
			found[e.Name] = e
		}
		e, ok := found["retention.ms"]
		check(ok && e.Value == retention && !e.Default, "DescribeConfig: retention.ms = %+v, want %s (not default)", e, retention)
		e, ok = found["cleanup.policy"]
		check(ok && e.Value == "delete" && e.Default, "DescribeConfig: cleanup.policy = %+v, want delete (default)", e)
	}
	// sarama 1.22's BrokerResource constant is 5, not Kafka's BROKER id 4 (fixed in later
	// sarama): with it a broker answers with a per-resource error, as Kafka did
	// ("Unsupported resource type"); Kafka's id works.
	_, err = admin.DescribeConfig(sarama.ConfigResource{Type: sarama.BrokerResource, Name: "1"})
	check(err != nil, "DescribeConfig(sarama.BrokerResource = 5): want a per-resource error, got none")
	entries, err = admin.DescribeConfig(sarama.ConfigResource{Type: sarama.ConfigResourceType(4), Name: "1"})
	check(err == nil && len(entries) > 0, "DescribeConfig(BROKER (4) \"1\"): %d entries, error %v", len(entries), err)

	md, err := admin.DescribeTopics([]string{topic}) // Metadata v4 at V0_11_0_0
	if check(err == nil && len(md) == 1, "DescribeTopics: %v %v", md, err) {
		check(md[0].Err == sarama.ErrNoError && len(md[0].Partitions) == 3, "DescribeTopics: %s err %v, %d partitions", topic, md[0].Err, len(md[0].Partitions))
	}

	// DeleteTopic: v0 below V0_11_0_0, so through the V0_10_1_0 admin.
	admin0, err := sarama.NewClusterAdmin(bs, configAt(sarama.V0_10_1_0))
	if err != nil {
		fatal("NewClusterAdmin(Version V0_10_1_0): %v", err)
	}
	defer admin0.Close()
	check(admin0.DeleteTopic(topic) == nil, "DeleteTopic (DeleteTopics v0) failed")
	err = admin0.DeleteTopic(topic + "-unknown")
	check(err == sarama.ErrUnknownTopicOrPartition, "DeleteTopic(unknown): got %v, want ErrUnknownTopicOrPartition", err)
	deadline = time.Now().Add(15 * time.Second)
	for {
		topics, err = admin.ListTopics()
		_, still := topics[topic]
		if err == nil && !still || time.Now().After(deadline) {
			check(err == nil && !still, "ListTopics after DeleteTopic: still listed (err %v)", err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func strEntries(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

// ---- produce-consume -----------------------------------------------------------------------

func scenarioProduceConsume(bs []string, topic string) {
	createTopic(bs, topic, 3, nil)
	sent := produce(bs, topic, "m", 0, 100)
	checkProduced(sent, 3)
	want := map[int32]int64{}
	for _, r := range sent {
		want[r.partition]++
	}
	// Default consumer (nil config, Version V0_8_2_0): ListOffsets v0, Fetch v0.
	consumer, err := sarama.NewConsumer(bs, nil)
	if err != nil {
		fatal("NewConsumer(default config): %v", err)
	}
	defer consumer.Close()
	var got []rec
	for p := int32(0); p < 3; p++ {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			fatal("ConsumePartition(%d, OffsetOldest) (ListOffsets v0): %v", p, err)
		}
		check(pc.HighWaterMarkOffset() == want[p] || pc.HighWaterMarkOffset() == 0, "partition %d: high watermark %d, want %d", p, pc.HighWaterMarkOffset(), want[p])
		timeout := time.After(15 * time.Second)
		for n := int64(0); n < want[p]; n++ {
			select {
			case m := <-pc.Messages():
				check(string(m.Value) == "value of "+string(m.Key), "partition %d offset %d: value %q for key %q", p, m.Offset, m.Value, m.Key)
				got = append(got, rec{string(m.Key), m.Partition, m.Offset})
			case e := <-pc.Errors():
				fatal("partition %d: consumer error (Fetch v0): %v", p, e)
			case <-timeout:
				check(false, "partition %d: %d of %d messages within 15 s (Fetch v0)", p, n, want[p])
				n = want[p]
			}
		}
		check(pc.HighWaterMarkOffset() == want[p], "partition %d: high watermark %d, want %d", p, pc.HighWaterMarkOffset(), want[p])
		pc.Close()
	}
	sameRecs(got, sent, "consumed (OffsetOldest, Fetch v0)")
}

// ---- group-consume -------------------------------------------------------------------------

type handler struct {
	mu       sync.Mutex
	got      []rec
	claimed  map[int32]bool
	initial  map[int32]int64
	setupErr error
}

func (h *handler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *handler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.mu.Lock()
	h.claimed[claim.Partition()] = true
	h.initial[claim.Partition()] = claim.InitialOffset()
	h.mu.Unlock()
	for m := range claim.Messages() {
		h.mu.Lock()
		h.got = append(h.got, rec{string(m.Key), m.Partition, m.Offset})
		h.mu.Unlock()
		sess.MarkMessage(m, "")
	}
	return nil
}

func (h *handler) snapshot() ([]rec, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]rec(nil), h.got...), len(h.claimed)
}

// runGroup joins the group (ConsumerGroup needs Version >= V0_10_2_0: exactly that), waits
// until it owns all partitions, calls between(), consumes until `want` messages arrived (or
// the deadline), then closes the group (final commit of the marked offsets).
func runGroup(bs []string, topic, group string, partitions int, want int, between func()) []rec {
	cfg := configAt(sarama.V0_10_2_0)
	cg, err := sarama.NewConsumerGroup(bs, group, cfg)
	if err != nil {
		fatal("NewConsumerGroup(Version V0_10_2_0): %v", err)
	}
	h := &handler{claimed: map[int32]bool{}, initial: map[int32]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var consumeErr error
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil {
				consumeErr = err
				return
			}
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, claimed := h.snapshot()
		if claimed == partitions {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			cg.Close()
			fatal("group %s: owned %d of %d partitions after 15 s (Consume error: %v)", group, claimed, partitions, consumeErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	note("group %s: member owns all %d partitions, initial offsets %v", group, partitions, h.initial)
	between()
	deadline = time.Now().Add(15 * time.Second)
	for {
		got, _ := h.snapshot()
		if len(got) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Anything redelivered would arrive right behind the wanted messages: a short settle.
	settle := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(settle) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	check(cg.Close() == nil, "ConsumerGroup.Close failed")
	<-done
	check(consumeErr == nil, "ConsumerGroup.Consume: %v", consumeErr)
	got, _ := h.snapshot()
	return got
}

func scenarioGroup(bs []string, topic, group string) {
	createTopic(bs, topic, 3, nil)
	// sarama's default Consumer.Offsets.Initial is OffsetNewest: the group joins first, the
	// 100 messages are produced once it owns every partition (offsets resolved).
	var sent []rec
	got := runGroup(bs, topic, group, 3, 100, func() {
		sent = produce(bs, topic, "m", 0, 100)
		checkProduced(sent, 3)
	})
	sameRecs(got, sent, "run 1: group consumed")

	// What the group committed (OffsetCommit v1 from the session, read back with OffsetFetch v1).
	ends := map[int32]int64{}
	for _, r := range sent {
		if r.offset+1 > ends[r.partition] {
			ends[r.partition] = r.offset + 1
		}
	}
	admin, err := sarama.NewClusterAdmin(bs, configAt(sarama.V0_10_2_0))
	if err != nil {
		fatal("NewClusterAdmin: %v", err)
	}
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	admin.Close()
	if check(err == nil, "ListConsumerGroupOffsets (OffsetFetch v1): %v", err) {
		for p := int32(0); p < 3; p++ {
			b := resp.GetBlock(topic, p)
			if check(b != nil, "committed offset of partition %d missing", p) {
				check(b.Err == sarama.ErrNoError && b.Offset == ends[p], "committed offset of partition %d: %d (%v), want %d",
					p, b.Offset, b.Err, ends[p])
			}
		}
	}

	// 5 more while the group is down; a second run of the group must get exactly those 5 (it
	// resumes at the committed offsets; with no commit it would start at the newest and get 0,
	// with a stale commit it would get messages of run 1 again).
	more := produce(bs, topic, "n", 100, 5)
	got2 := runGroup(bs, topic, group, 3, 5, func() {})
	redelivered := 0
	for _, r := range got2 {
		if strings.HasPrefix(r.key, "m-") {
			redelivered++
		}
	}
	check(redelivered == 0, "run 2: %d messages of run 1 delivered again", redelivered)
	sameRecs(got2, more, "run 2: group consumed only the 5 new messages")
}

func main() {
	if len(os.Args) < 4 {
		fmt.Fprintln(os.Stderr, "usage: sarama-scenario admin|produce-consume|group-consume BOOTSTRAP TOPIC [GROUP]")
		os.Exit(2)
	}
	mode, bs, topic := os.Args[1], []string{os.Args[2]}, os.Args[3]
	sarama.Logger = log.New(saramaLog, "[sarama] ", log.Ltime|log.Lmicroseconds)
	name = "sarama 1.22.1 " + mode
	start := time.Now()
	switch mode {
	case "admin":
		scenarioAdmin(bs, topic)
	case "produce-consume":
		scenarioProduceConsume(bs, topic)
	case "group-consume":
		if len(os.Args) < 5 {
			fatal("group-consume needs a GROUP argument")
		}
		scenarioGroup(bs, topic, os.Args[4])
	default:
		fatal("unknown mode %q", mode)
	}
	note("took %.1fs", time.Since(start).Seconds())
	finish()
}
