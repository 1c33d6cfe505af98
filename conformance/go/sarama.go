// IBM/sarama, configured as its documentation asks for each feature (sarama needs a Kafka version
// to pick request versions: --version, 4.0.0 unless given; idempotence needs acks=all and one
// request in flight).
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

var saramaDriver = driver{
	commands: map[string]func(context.Context, string, args) any{
		"produce":  saramaProduce,
		"read":     saramaRead,
		"member":   saramaMember,
		"consumer": saramaConsumer,
		"seeker":   saramaSeeker,
		"admin":    saramaAdmin,
	},
	errorOf: func(err error) errInfo {
		if pes, ok := errors.AsType[sarama.ProducerErrors](err); ok && len(pes) > 0 {
			err = pes[0].Err
		}
		info := errInfo{Message: err.Error()}
		if ke, ok := errors.AsType[sarama.KError](err); ok {
			code := int16(ke)
			info.Code = &code
		}
		return info
	},
}

var saramaCodecs = map[string]sarama.CompressionCodec{
	"none": sarama.CompressionNone, "gzip": sarama.CompressionGZIP, "snappy": sarama.CompressionSnappy,
	"lz4": sarama.CompressionLZ4, "zstd": sarama.CompressionZSTD,
}

func init() {
	if os.Getenv("KCGO_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.Lmicroseconds)
	}
}

// saramaConfig: the given Kafka version, short waits, errors returned rather than logged.
func saramaConfig(a args, clientID string) *sarama.Config {
	cfg := sarama.NewConfig()
	v, err := sarama.ParseKafkaVersion(a.flag("version", "4.0.0"))
	if err != nil {
		fail(err)
	}
	cfg.Version = v
	cfg.ClientID = clientID
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 100 * time.Millisecond
	return cfg
}

func saramaRec(m *sarama.ConsumerMessage) rec {
	ts := m.Timestamp.UnixMilli()
	out := rec{Partition: m.Partition, Offset: m.Offset, Key: text(m.Key), Value: text(m.Value), Timestamp: &ts,
		Headers: [][2]string{}}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, [2]string{string(h.Key), string(h.Value)})
	}
	return out
}

func encoder(s *string) sarama.Encoder {
	if s == nil {
		return nil
	}
	return sarama.StringEncoder(*s)
}

func saramaProduce(ctx context.Context, bootstrap string, a args) any {
	topic, codec := a.pos[0], a.flag("codec", "none")
	cfg := saramaConfig(a, "sarama-producer")
	c, ok := saramaCodecs[codec]
	if !ok {
		fail(fmt.Errorf("unknown codec %q", codec))
	}
	cfg.Producer.Compression = c
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Return.Successes = true
	cfg.Producer.Timeout = timeout
	p, err := sarama.NewSyncProducer([]string{bootstrap}, cfg)
	if err != nil {
		fail(err)
	}
	defer p.Close()
	recs := readRecords()
	chunk := a.int("chunk", max(len(recs), 1))
	offsets := [][2]int64{}
	for i := 0; i < len(recs); i += chunk {
		var msgs []*sarama.ProducerMessage
		for _, r := range recs[i:min(i+chunk, len(recs))] {
			m := &sarama.ProducerMessage{Topic: topic, Partition: r.Partition, Key: encoder(r.Key), Value: encoder(r.Value)}
			for _, h := range r.Headers {
				m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h[0]), Value: []byte(h[1])})
			}
			if r.Timestamp != nil {
				m.Timestamp = time.UnixMilli(*r.Timestamp)
			}
			msgs = append(msgs, m)
		}
		if err := p.SendMessages(msgs); err != nil {
			fail(err)
		}
		for _, m := range msgs {
			offsets = append(offsets, [2]int64{int64(m.Partition), m.Offset})
		}
	}
	return map[string]any{"offsets": offsets}
}

// partitionConsumers are sarama PartitionConsumers of one topic, read together.
type partitionConsumers struct {
	consumer sarama.Consumer
	topic    string
	pcs      map[int32]sarama.PartitionConsumer
}

func (pc *partitionConsumers) start(p int32, offset int64) error {
	if old := pc.pcs[p]; old != nil {
		old.Close()
		delete(pc.pcs, p)
	}
	c, err := pc.consumer.ConsumePartition(pc.topic, p, offset)
	if err != nil {
		return err
	}
	pc.pcs[p] = c
	return nil
}

func (pc *partitionConsumers) closeAll() {
	for p, c := range pc.pcs {
		c.Close()
		delete(pc.pcs, p)
	}
}

// poll reads up to n records from all partitions within the timeout; a consumer error ends it.
func (pc *partitionConsumers) poll(n int) ([]rec, error) {
	var cases []reflect.SelectCase
	for _, c := range pc.pcs {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.Messages())},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c.Errors())})
	}
	cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(time.After(timeout))})
	out := []rec{}
	for len(out) < n {
		i, v, ok := reflect.Select(cases)
		switch {
		case i == len(cases)-1:
			return out, nil
		case !ok:
			cases[i].Chan = reflect.ValueOf(nil) // closed: never ready again
		case i%2 == 1:
			return out, v.Interface().(*sarama.ConsumerError)
		default:
			out = append(out, saramaRec(v.Interface().(*sarama.ConsumerMessage)))
		}
	}
	return out, nil
}

func saramaRead(ctx context.Context, bootstrap string, a args) any {
	var starts map[string]int64
	mustJSON(a.pos[1], &starts)
	count, err := strconv.Atoi(a.pos[2])
	if err != nil {
		fail(err)
	}
	c, err := sarama.NewConsumer([]string{bootstrap}, saramaConfig(a, "sarama-reader"))
	if err != nil {
		fail(err)
	}
	defer c.Close()
	pc := &partitionConsumers{consumer: c, topic: a.pos[0], pcs: map[int32]sarama.PartitionConsumer{}}
	defer pc.closeAll()
	for p, o := range partitionOffsets(starts) {
		if err := pc.start(p, o); err != nil {
			fail(err)
		}
	}
	recs, err := pc.poll(count)
	if err != nil {
		fail(err)
	}
	return map[string]any{"records": recs}
}

// saramaGroupConfig: manual commits, short session and heartbeat, the earliest offset where
// nothing is committed, and the cooperative-sticky strategy.
func saramaGroupConfig(a args, clientID string) *sarama.Config {
	if p := a.flag("protocol", "classic"); p != "classic" {
		fail(fmt.Errorf("sarama has no %q group protocol (KIP-848)", p))
	}
	cfg := saramaConfig(a, clientID)
	cfg.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyCooperativeSticky()}
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	return cfg
}

// handler adapts functions to sarama.ConsumerGroupHandler.
type handler struct {
	setup   func(sarama.ConsumerGroupSession)
	cleanup func(sarama.ConsumerGroupSession)
	claim   func(sarama.ConsumerGroupSession, sarama.ConsumerGroupClaim)
}

func (h handler) Setup(s sarama.ConsumerGroupSession) error   { h.setup(s); return nil }
func (h handler) Cleanup(s sarama.ConsumerGroupSession) error { h.cleanup(s); return nil }
func (h handler) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	h.claim(s, c)
	return nil
}

// consumeGroup runs Consume until ctx ends (sarama returns from it after each session, on errors
// too), logging the group's errors on stderr; then it closes the group, which leaves it.
func consumeGroup(ctx context.Context, g sarama.ConsumerGroup, topic string, h handler) {
	go func() {
		for err := range g.Errors() {
			fmt.Fprintf(os.Stderr, "sarama group error: %v\n", err)
		}
	}()
	for ctx.Err() == nil {
		if err := g.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "sarama Consume: %v\n", err)
			time.Sleep(100 * time.Millisecond) // sarama returns at once while the coordinator is away
		}
	}
	if err := g.Close(); err != nil {
		fail(err)
	}
}

// saramaMember is a group member for conformance/groups.py. Its assignment is the set of claims
// it is consuming (with cooperative-sticky a rebalance starts new claims and ends revoked ones
// within one session); the records of a claim are reported once their offsets are committed.
func saramaMember(ctx context.Context, bootstrap string, a args) any {
	topic, group, name := a.pos[0], a.pos[1], a.pos[2]
	g, err := sarama.NewConsumerGroup([]string{bootstrap}, group, saramaGroupConfig(a, "sarama-"+name))
	if err != nil {
		fail(err)
	}
	var mu sync.Mutex
	rep := newReporter()
	member := ""
	report := func(s sarama.ConsumerGroupSession, p int32, owned bool) {
		mu.Lock()
		defer mu.Unlock()
		if s.MemberID() != member {
			member = s.MemberID()
			emit(map[string]any{"member": member})
		}
		if owned {
			rep.assigned[p] = true
		} else {
			delete(rep.assigned, p)
		}
		rep.report()
	}
	consumeGroup(ctx, g, topic, handler{
		setup:   func(sarama.ConsumerGroupSession) {},
		cleanup: func(sarama.ConsumerGroupSession) {},
		claim: func(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) {
			report(s, c.Partition(), true)
			defer report(s, c.Partition(), false)
			for msg := range c.Messages() {
				batch := []*sarama.ConsumerMessage{msg}
			drain:
				for len(batch) < 500 {
					select {
					case m, ok := <-c.Messages():
						if !ok {
							break drain
						}
						batch = append(batch, m)
					default:
						break drain
					}
				}
				s.MarkMessage(batch[len(batch)-1], "")
				s.Commit()
				seen := [][3]any{}
				for _, m := range batch {
					seen = append(seen, [3]any{m.Partition, m.Offset, text(m.Value)})
				}
				emit(map[string]any{"records": seen})
			}
		},
	})
	return map[string]any{"closed": true}
}

// saramaConsumer is a group member driven op by op, with the ops of franzConsumer: commits are
// MarkOffset and ResetOffset (together they set any offset) and Commit on the live session;
// committed offsets come from the ClusterAdmin's ListConsumerGroupOffsets.
func saramaConsumer(ctx context.Context, bootstrap string, a args) any {
	topic, group := a.pos[0], a.pos[1]
	cfg := saramaGroupConfig(a, "sarama-offsets")
	g, err := sarama.NewConsumerGroup([]string{bootstrap}, group, cfg)
	if err != nil {
		fail(err)
	}
	adm, err := sarama.NewClusterAdmin([]string{bootstrap}, saramaConfig(a, "sarama-admin"))
	if err != nil {
		fail(err)
	}
	defer adm.Close()
	var mu sync.Mutex
	var live sarama.ConsumerGroupSession
	var buffered consumed
	consuming, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		consumeGroup(consuming, g, topic, handler{
			setup:   func(s sarama.ConsumerGroupSession) { mu.Lock(); live = s; mu.Unlock() },
			cleanup: func(sarama.ConsumerGroupSession) { mu.Lock(); live = nil; mu.Unlock() },
			claim: func(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) {
				for m := range c.Messages() {
					buffered.add(m.Partition, m.Offset, m.Value)
				}
			},
		})
	}()
	session(map[string]func(command) any{
		"consume": func(c command) any { return buffered.take(c.N) },
		"commit": func(c command) any {
			var s sarama.ConsumerGroupSession
			deadline := time.Now().Add(timeout)
			for s == nil && time.Now().Before(deadline) {
				mu.Lock()
				s = live
				mu.Unlock()
				if s == nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
			if s == nil {
				return failure(errors.New("no group session to commit in"))
			}
			for k, v := range c.Commits {
				p, _ := strconv.Atoi(k)
				// sarama's MarkOffset only moves forward and ResetOffset only back (or stays)
				s.MarkOffset(topic, int32(p), v.Offset, v.Metadata)
				s.ResetOffset(topic, int32(p), v.Offset, v.Metadata)
			}
			s.Commit()
			return map[string]any{}
		},
		"committed": func(command) any {
			r, err := adm.ListConsumerGroupOffsets(group, nil)
			if err == nil && r.Err != sarama.ErrNoError {
				err = r.Err
			}
			if err != nil {
				return failure(err)
			}
			out := map[string][2]any{}
			for p, b := range r.Blocks[topic] {
				if b.Offset >= 0 {
					out[strconv.Itoa(int(p))] = [2]any{b.Offset, b.Metadata}
				}
			}
			return map[string]any{"committed": out}
		},
		"close": func(command) any {
			stop()
			<-done
			return map[string]any{}
		},
	})
	return nil
}

// saramaSeeker consumes assigned partitions (no group) with the ops of franzSeeker: assign
// starts a PartitionConsumer per partition (at an offset, or at Client.GetOffset's answer for a
// time), seek closes one and starts it again at the new offset.
func saramaSeeker(ctx context.Context, bootstrap string, a args) any {
	cl, err := sarama.NewClient([]string{bootstrap}, saramaConfig(a, "sarama-seeker"))
	if err != nil {
		fail(err)
	}
	defer cl.Close()
	c, err := sarama.NewConsumerFromClient(cl)
	if err != nil {
		fail(err)
	}
	pc := &partitionConsumers{consumer: c, topic: a.pos[0], pcs: map[int32]sarama.PartitionConsumer{}}
	start := func(c command) any {
		for p, o := range partitionOffsets(c.Offsets) {
			if err := pc.start(p, o); err != nil {
				return failure(err)
			}
		}
		for p, t := range partitionOffsets(c.Times) {
			o, err := cl.GetOffset(pc.topic, p, t)
			if err == nil {
				err = pc.start(p, o)
			}
			if err != nil {
				return failure(err)
			}
		}
		return map[string]any{}
	}
	session(map[string]func(command) any{
		"assign": func(c command) any { pc.closeAll(); return start(c) },
		"seek":   start,
		"poll": func(c command) any {
			recs, err := pc.poll(c.N)
			if err != nil {
				return failure(err)
			}
			return map[string]any{"records": recs}
		},
		"close": func(command) any { pc.closeAll(); return map[string]any{} },
	})
	return nil
}

// saramaAdmin is a ClusterAdmin session with the ops of franzAdmin; offsets are listed through
// Client.GetOffset (the ClusterAdmin has no ListOffsets).
func saramaAdmin(ctx context.Context, bootstrap string, a args) any {
	cfg := saramaConfig(a, "sarama-admin")
	cl, err := sarama.NewClient([]string{bootstrap}, cfg)
	if err != nil {
		fail(err)
	}
	adm, err := sarama.NewClusterAdminFromClient(cl)
	if err != nil {
		fail(err)
	}
	defer adm.Close()
	session(map[string]func(command) any{
		"create_topic": func(c command) any {
			configs := map[string]*string{}
			for k, v := range c.Configs {
				configs[k] = &v
			}
			err := adm.CreateTopic(c.Name, &sarama.TopicDetail{NumPartitions: c.Partitions, ReplicationFactor: c.RF,
				ConfigEntries: configs}, false)
			if err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"delete_topic": func(c command) any {
			if err := adm.DeleteTopic(c.Name); err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"list_topics": func(command) any {
			topics, err := adm.ListTopics()
			if err != nil {
				return failure(err)
			}
			names := []string{}
			for t := range topics {
				names = append(names, t)
			}
			return map[string]any{"topics": names}
		},
		"describe_topic": func(c command) any {
			ts, err := adm.DescribeTopics([]string{c.Name})
			if err == nil && ts[0].Err != sarama.ErrNoError {
				err = ts[0].Err
			}
			if err != nil {
				return failure(err)
			}
			parts := []map[string]any{}
			for _, p := range ts[0].Partitions {
				parts = append(parts, map[string]any{"partition": p.ID, "leader": p.Leader, "replicas": p.Replicas,
					"isr": p.Isr})
			}
			return map[string]any{"partitions": parts, "internal": ts[0].IsInternal}
		},
		"create_partitions": func(c command) any {
			if err := adm.CreatePartitions(c.Name, c.Partitions, nil, false); err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"describe_configs": func(c command) any {
			entries, err := adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: c.Name})
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for _, e := range entries {
				out[e.Name] = map[string]any{"value": e.Value, "source": int8(e.Source), "sensitive": e.Sensitive,
					"readOnly": e.ReadOnly, "default": e.Default}
			}
			return map[string]any{"configs": out}
		},
		"alter_configs": func(c command) any {
			var err error
			if c.Increment {
				entries := map[string]sarama.IncrementalAlterConfigsEntry{}
				for k, v := range c.Configs {
					entries[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationSet,
						Value: &v}
				}
				for _, k := range c.Delete {
					entries[k] = sarama.IncrementalAlterConfigsEntry{Operation: sarama.IncrementalAlterConfigsOperationDelete}
				}
				err = adm.IncrementalAlterConfig(sarama.TopicResource, c.Name, entries, false)
			} else {
				entries := map[string]*string{}
				for k, v := range c.Configs {
					entries[k] = &v
				}
				err = adm.AlterConfig(sarama.TopicResource, c.Name, entries, false)
			}
			if err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"describe_cluster": func(command) any {
			brokers, controller, err := adm.DescribeCluster()
			if err != nil {
				return failure(err)
			}
			out := []map[string]any{}
			for _, b := range brokers {
				host, port, err := net.SplitHostPort(b.Addr())
				if err != nil {
					return failure(err)
				}
				n, _ := strconv.Atoi(port)
				out = append(out, map[string]any{"id": b.ID(), "host": host, "port": n})
			}
			return map[string]any{"brokers": out, "controller": controller}
		},
		"list_offsets": func(c command) any {
			at := map[string]int64{"earliest": sarama.OffsetOldest, "latest": sarama.OffsetNewest}
			t, ok := at[c.Spec]
			if !ok {
				var err error
				if t, err = strconv.ParseInt(c.Spec, 10, 64); err != nil {
					return failure(err)
				}
			}
			if err := cl.RefreshMetadata(c.Name); err != nil {
				return failure(err)
			}
			parts, err := cl.Partitions(c.Name)
			if err != nil {
				return failure(err)
			}
			out := map[string]int64{}
			for _, p := range parts {
				o, err := cl.GetOffset(c.Name, p, t)
				if err != nil {
					return failure(err)
				}
				out[strconv.Itoa(int(p))] = o
			}
			return map[string]any{"offsets": out}
		},
		"delete_records": func(c command) any {
			if err := adm.DeleteRecords(c.Name, partitionOffsets(c.Offsets)); err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"list_groups": func(command) any {
			gs, err := adm.ListConsumerGroups()
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for g, protocolType := range gs {
				out[g] = map[string]any{"protocolType": protocolType}
			}
			return map[string]any{"groups": out}
		},
		"describe_groups": func(c command) any {
			ds, err := adm.DescribeConsumerGroups(c.Names)
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for _, d := range ds {
				if d.Err != sarama.ErrNoError {
					out[d.GroupId] = failure(d.Err)
					continue
				}
				members := []map[string]any{}
				for id, m := range d.Members {
					assigned := []int32{}
					if ma, err := m.GetMemberAssignment(); err == nil && ma != nil {
						for _, ps := range ma.Topics {
							assigned = append(assigned, ps...)
						}
					}
					slices.Sort(assigned)
					members = append(members, map[string]any{"memberId": id, "clientId": m.ClientId,
						"clientHost": m.ClientHost, "assignment": assigned})
				}
				out[d.GroupId] = map[string]any{"state": d.State, "protocolType": d.ProtocolType,
					"protocol": d.Protocol, "members": members}
			}
			return map[string]any{"groups": out}
		},
		"fetch_offsets": func(c command) any {
			r, err := adm.ListConsumerGroupOffsets(c.Name, nil)
			if err == nil && r.Err != sarama.ErrNoError {
				err = r.Err
			}
			if err != nil {
				return failure(err)
			}
			out := map[string]map[string][2]any{}
			for t, ps := range r.Blocks {
				out[t] = map[string][2]any{}
				for p, b := range ps {
					out[t][strconv.Itoa(int(p))] = [2]any{b.Offset, b.Metadata}
				}
			}
			return map[string]any{"offsets": out}
		},
		"delete_groups": func(c command) any {
			out := map[string]any{}
			for _, g := range c.Names {
				if err := adm.DeleteConsumerGroup(g); err != nil {
					out[g] = failure(err)
				} else {
					out[g] = nil
				}
			}
			return map[string]any{"results": out}
		},
		"delete_offsets": func(c command) any {
			out := map[string]any{}
			for _, p := range c.Parts {
				out[strconv.Itoa(int(p))] = nil
				if err := adm.DeleteConsumerGroupOffset(c.Name, c.Topic, p); err != nil {
					out[strconv.Itoa(int(p))] = failure(err)
				}
			}
			return map[string]any{"results": out}
		},
		"describe_log_dirs": func(c command) any {
			var ids []int32
			for _, b := range cl.Brokers() {
				ids = append(ids, b.ID())
			}
			all, err := adm.DescribeLogDirs(ids)
			if err != nil {
				return failure(err)
			}
			out := map[string]map[string]int64{}
			for _, dirs := range all {
				for _, d := range dirs {
					if d.ErrorCode != sarama.ErrNoError {
						return failure(d.ErrorCode)
					}
					for _, t := range d.Topics {
						if t.Topic != c.Name {
							continue
						}
						if out[d.Path] == nil {
							out[d.Path] = map[string]int64{}
						}
						for _, p := range t.Partitions {
							out[d.Path][strconv.Itoa(int(p.PartitionID))] = p.Size
						}
					}
				}
			}
			return map[string]any{"dirs": out}
		},
		"close": func(command) any { return map[string]any{} },
	})
	return nil
}
