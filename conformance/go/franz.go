// franz-go (kgo for producing and consuming, kadm for administration), with its defaults except
// where a scenario needs short waits: acks=all and idempotent writes are franz-go's defaults.
package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var franz = driver{
	commands: map[string]func(context.Context, string, args) any{
		"produce":  franzProduce,
		"read":     franzRead,
		"member":   franzMember,
		"consumer": franzConsumer,
		"seeker":   franzSeeker,
		"admin":    franzAdmin,
	},
	errorOf: func(err error) errInfo {
		info := errInfo{Message: err.Error()}
		if ke, ok := errors.AsType[*kerr.Error](err); ok {
			info.Code, info.Name = &ke.Code, &ke.Message
		}
		return info
	},
}

var franzCodecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

func franzClient(bootstrap string, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.RetryTimeout(timeout),
		kgo.FetchMaxWait(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		fail(err)
	}
	return cl
}

func franzRecord(r rec) *kgo.Record {
	out := &kgo.Record{Partition: r.Partition, Key: bytesOf(r.Key), Value: bytesOf(r.Value)}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
	}
	if r.Timestamp != nil {
		out.Timestamp = time.UnixMilli(*r.Timestamp)
	}
	return out
}

func franzRec(r *kgo.Record) rec {
	ts := r.Timestamp.UnixMilli()
	out := rec{Partition: r.Partition, Offset: r.Offset, Key: text(r.Key), Value: text(r.Value), Timestamp: &ts,
		Headers: [][2]string{}}
	for _, h := range r.Headers {
		out.Headers = append(out.Headers, [2]string{h.Key, string(h.Value)})
	}
	return out
}

func franzProduce(ctx context.Context, bootstrap string, a args) any {
	topic, codec := a.pos[0], a.flag("codec", "none")
	c, ok := franzCodecs[codec]
	if !ok {
		fail(fmt.Errorf("unknown codec %q", codec))
	}
	recs := readRecords()
	cl := franzClient(bootstrap, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(c))
	defer cl.Close()
	// Not RecordDeliveryTimeout: franz-go counts it from each record's Timestamp, an hour ago here.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	chunk := a.int("chunk", max(len(recs), 1))
	offsets := [][2]int64{}
	for i := 0; i < len(recs); i += chunk {
		var batch []*kgo.Record
		for _, r := range recs[i:min(i+chunk, len(recs))] {
			batch = append(batch, franzRecord(r))
		}
		for _, res := range cl.ProduceSync(ctx, batch...) { // results come in completion order
			if res.Err != nil {
				fail(res.Err)
			}
		}
		for _, r := range batch {
			offsets = append(offsets, [2]int64{int64(r.Partition), r.Offset})
		}
	}
	return map[string]any{"offsets": offsets}
}

// poll collects up to n records within the timeout; fetch errors end it.
func franzPoll(ctx context.Context, cl *kgo.Client, n int) ([]rec, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := []rec{}
	for len(out) < n {
		fetches := cl.PollRecords(ctx, n-len(out))
		if ctx.Err() != nil {
			break
		}
		if err := fetches.Err(); err != nil {
			return out, err
		}
		for _, r := range fetches.Records() {
			out = append(out, franzRec(r))
		}
	}
	return out, nil
}

func franzRead(ctx context.Context, bootstrap string, a args) any {
	var starts map[string]int64
	mustJSON(a.pos[1], &starts)
	count, err := strconv.Atoi(a.pos[2])
	if err != nil {
		fail(err)
	}
	offsets := map[int32]kgo.Offset{}
	for p, o := range partitionOffsets(starts) {
		offsets[p] = kgo.NewOffset().At(o)
	}
	cl := franzClient(bootstrap, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{a.pos[0]: offsets}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()))
	defer cl.Close()
	recs, err := franzPoll(ctx, cl, count)
	if err != nil {
		fail(err)
	}
	return map[string]any{"records": recs}
}

// groupOpts are the settings every franz-go group member here uses: manual commits, short
// session and heartbeat, the earliest offset where nothing is committed; the classic protocol with
// the cooperative-sticky balancer, or KIP-848 (the broker assigns; franz-go asks for `uniform`).
func franzGroupOpts(topic, group, protocol string) []kgo.Opt {
	opts := []kgo.Opt{kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(500 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
	switch protocol {
	case "classic":
		return append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	case "consumer":
		return append(opts, kgo.Balancers(kgo.StickyBalancer()), kgo.ServerSideBalancer())
	}
	fail(fmt.Errorf("unknown group protocol %q", protocol))
	return nil
}

// franzMember is a group member for conformance/groups.py: it reports its assignment on every
// change, and the records of each poll once their offsets are committed; BlockRebalanceOnPoll
// keeps a rebalance from revoking partitions between a poll and its commit.
func franzMember(ctx context.Context, bootstrap string, a args) any {
	topic, group, name := a.pos[0], a.pos[1], a.pos[2]
	var mu sync.Mutex
	rep := newReporter()
	var member string
	change := func(cl *kgo.Client, parts map[string][]int32, owned bool) {
		mu.Lock()
		defer mu.Unlock()
		if id, _ := cl.GroupMetadata(); id != "" && id != member {
			member = id
			emit(map[string]any{"member": id})
		}
		for _, p := range parts[topic] {
			if owned {
				rep.assigned[p] = true
			} else {
				delete(rep.assigned, p)
			}
		}
		rep.report()
	}
	opts := append(franzGroupOpts(topic, group, a.flag("protocol", "classic")), kgo.ClientID("fgo-"+name),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, cl *kgo.Client, p map[string][]int32) { change(cl, p, true) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, cl *kgo.Client, p map[string][]int32) { change(cl, p, false) }),
		kgo.OnPartitionsLost(func(_ context.Context, cl *kgo.Client, p map[string][]int32) { change(cl, p, false) }))
	cl := franzClient(bootstrap, opts...)
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		if err := fetches.Err(); err != nil {
			fail(err)
		}
		if recs := fetches.Records(); len(recs) > 0 {
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				if ctx.Err() != nil {
					break
				}
				fail(err)
			}
			seen := [][3]any{}
			for _, r := range recs {
				seen = append(seen, [3]any{r.Partition, r.Offset, text(r.Value)})
			}
			emit(map[string]any{"records": seen})
		}
		cl.AllowRebalance()
	}
	cl.CloseAllowingRebalance() // leaves the group
	return map[string]any{"closed": true}
}

// franzConsumer is a group member driven op by op (conformance/golang.py's Session):
//
//	consume {n}        -> {"records": [[partition, offset, value]...]}: n records, and any more
//	                      that arrive within 300 ms after them
//	commit {commits}   -> {} : {"partition": {offset, metadata}} committed synchronously, with
//	                      the metadata set through PreCommitFnContext
//	committed          -> {"committed": {"partition": [offset, metadata]}} (kadm FetchOffsets)
//	close              -> {} : the client leaves the group
func franzConsumer(ctx context.Context, bootstrap string, a args) any {
	topic, group := a.pos[0], a.pos[1]
	cl := franzClient(bootstrap, append(franzGroupOpts(topic, group, a.flag("protocol", "classic")),
		kgo.ClientID("fgo-offsets"))...)
	adm := kadm.NewClient(cl)
	var buffered consumed
	polling, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for polling.Err() == nil {
			cl.PollFetches(polling).EachRecord(func(r *kgo.Record) { buffered.add(r.Partition, r.Offset, r.Value) })
		}
	}()
	session(map[string]func(command) any{
		"consume": func(c command) any { return buffered.take(c.N) },
		"commit": func(c command) any {
			offsets, meta := map[int32]kgo.EpochOffset{}, map[int32]string{}
			for k, v := range c.Commits {
				p, _ := strconv.Atoi(k)
				offsets[int32(p)] = kgo.EpochOffset{Epoch: -1, Offset: v.Offset}
				meta[int32(p)] = v.Metadata
			}
			withMeta := kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
				for i := range req.Topics {
					for j := range req.Topics[i].Partitions {
						m := meta[req.Topics[i].Partitions[j].Partition]
						req.Topics[i].Partitions[j].Metadata = &m
					}
				}
				return nil
			})
			var err error
			cl.CommitOffsetsSync(withMeta, map[string]map[int32]kgo.EpochOffset{topic: offsets},
				func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, e error) {
					err = e
					for _, t := range resp.Topics {
						for _, p := range t.Partitions {
							if e := kerr.ErrorForCode(p.ErrorCode); e != nil && err == nil {
								err = e
							}
						}
					}
				})
			if err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"committed": func(command) any {
			offsets, err := adm.FetchOffsets(ctx, group)
			if err == nil {
				err = offsets.Error()
			}
			if err != nil {
				return failure(err)
			}
			out := map[string][2]any{}
			for _, o := range offsets[topic] {
				out[strconv.Itoa(int(o.Partition))] = [2]any{o.At, o.Metadata}
			}
			return map[string]any{"committed": out}
		},
		"close": func(command) any {
			stop()
			<-done
			cl.Close()
			return map[string]any{}
		},
	})
	return nil
}

// franzSeeker consumes assigned partitions (no group), op by op (offsets are listed by the admin
// session):
//
//	assign {offsets}    -> {} : a new consumer of these partitions at these offsets
//	assign {times}      -> {} : ... at the first record at or after each time (Offset.AfterMilli)
//	seek {offsets}      -> {} : SetOffsets on the running consumer
//	poll {n}            -> {"records": [...]} or {"error": ...} (OFFSET_OUT_OF_RANGE: no reset)
func franzSeeker(ctx context.Context, bootstrap string, a args) any {
	topic := a.pos[0]
	var cl *kgo.Client
	session(map[string]func(command) any{
		"assign": func(c command) any {
			if cl != nil {
				cl.Close()
			}
			offsets := map[int32]kgo.Offset{}
			for p, o := range partitionOffsets(c.Offsets) {
				offsets[p] = kgo.NoResetOffset().At(o)
			}
			for p, t := range partitionOffsets(c.Times) {
				offsets[p] = kgo.NoResetOffset().AfterMilli(t)
			}
			cl = franzClient(bootstrap, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
				kgo.ConsumeResetOffset(kgo.NoResetOffset()))
			return map[string]any{}
		},
		"seek": func(c command) any {
			offsets := map[int32]kgo.EpochOffset{}
			for p, o := range partitionOffsets(c.Offsets) {
				offsets[p] = kgo.EpochOffset{Epoch: -1, Offset: o}
			}
			cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{topic: offsets})
			return map[string]any{}
		},
		"poll": func(c command) any {
			recs, err := franzPoll(ctx, cl, c.N)
			if err != nil {
				return failure(err)
			}
			return map[string]any{"records": recs}
		},
		"close": func(command) any {
			if cl != nil {
				cl.Close()
			}
			return map[string]any{}
		},
	})
	return nil
}

// franzAdmin is a kadm session. Its ops, the same for sarama's ClusterAdmin (an error answers
// {"error": ...}, per item where the client answers per item):
//
//	create_topic {name, partitions, rf, configs}  -> {} ("partitions", "rf": what was created)
//	delete_topic {name}                           -> {}
//	list_topics                                   -> {"topics": [name...]} (no internal topics)
//	describe_topic {name}                         -> {"partitions": [{partition, leader, replicas, isr}], "internal"}
//	create_partitions {name, partitions}          -> {} : grow to that many partitions
//	describe_configs {name}                       -> {"configs": {key: {value, source, sensitive}}}
//	alter_configs {name, configs, delete, incremental} -> {} : set configs, delete keys (incremental), or
//	                                                 replace the whole set of overrides with configs
//	describe_cluster                              -> {"brokers": [{id, host, port}], "controller"}
//	list_offsets {name, spec}                     -> {"offsets": {partition: offset}}; spec: earliest, latest,
//	                                                 max (franz-go: the largest timestamp's) or a time in ms
//	                                                 (the first offset at or after it)
//	delete_records {name, offsets}                -> {"lowWatermarks": {partition: offset or error}}
//	list_groups                                   -> {"groups": {group: {protocolType, state, type}}}
//	describe_groups {names}                       -> {"groups": {group: {state, protocolType, protocol,
//	                                                 members: [{memberId, clientId, clientHost, assignment}]}}}
//	describe_consumer_groups {names}              -> the same for KIP-848 groups (franz-go only)
//	fetch_offsets {name}                          -> {"offsets": {topic: {partition: [offset, metadata]}}}
//	delete_groups {names}                         -> {"results": {group: null or error}}
//	delete_offsets {name, topic, parts}           -> {"results": {partition: null or error}}: OffsetDelete of
//	                                                 group name's offsets of these partitions
//	describe_log_dirs {name}                      -> {"dirs": {dir: {partition: size}}}: topic name's partitions
//
// DescribeCluster, which kadm does not wrap, goes through kmsg as a franz-go user sends any request.
func franzAdmin(ctx context.Context, bootstrap string, a args) any {
	// kadm answers metadata (ListTopics, Metadata) from the client's cache for up to MetadataMinAge
	// (5 s by default): a scenario waiting for a deleted topic to go waits that long.
	cl := franzClient(bootstrap, kgo.MetadataMinAge(200*time.Millisecond))
	adm := kadm.NewClient(cl)
	defer adm.Close()
	partitionsOf := func(ps []int32) []int32 {
		slices.Sort(ps)
		return ps
	}
	session(map[string]func(command) any{
		"create_topic": func(c command) any {
			configs := map[string]*string{}
			for k, v := range c.Configs {
				configs[k] = &v
			}
			r, err := adm.CreateTopic(ctx, c.Partitions, c.RF, configs, c.Name)
			if err == nil {
				err = r.Err
			}
			if err != nil {
				return failure(err)
			}
			return map[string]any{"partitions": r.NumPartitions, "rf": r.ReplicationFactor}
		},
		"delete_topic": func(c command) any {
			r, err := adm.DeleteTopic(ctx, c.Name)
			if err == nil {
				err = r.Err
			}
			if err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"list_topics": func(command) any {
			topics, err := adm.ListTopics(ctx)
			if err != nil {
				return failure(err)
			}
			return map[string]any{"topics": topics.Names()}
		},
		"describe_topic": func(c command) any {
			md, err := adm.Metadata(ctx, c.Name)
			if err != nil {
				return failure(err)
			}
			t := md.Topics[c.Name]
			if t.Err != nil {
				return failure(t.Err)
			}
			parts := []map[string]any{}
			for _, p := range t.Partitions.Sorted() {
				parts = append(parts, map[string]any{"partition": p.Partition, "leader": p.Leader,
					"replicas": p.Replicas, "isr": p.ISR})
			}
			return map[string]any{"partitions": parts, "internal": t.IsInternal}
		},
		"create_partitions": func(c command) any {
			r, err := adm.UpdatePartitions(ctx, int(c.Partitions), c.Name)
			if err == nil {
				err = r[c.Name].Err
			}
			if err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"describe_configs": func(c command) any {
			rs, err := adm.DescribeTopicConfigs(ctx, c.Name)
			if err == nil {
				err = rs[0].Err
			}
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for _, cfg := range rs[0].Configs {
				out[cfg.Key] = map[string]any{"value": cfg.Value, "source": int8(cfg.Source), "sensitive": cfg.Sensitive}
			}
			return map[string]any{"configs": out}
		},
		"alter_configs": func(c command) any {
			var alter []kadm.AlterConfig
			for k, v := range c.Configs {
				alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
			}
			for _, k := range c.Delete {
				alter = append(alter, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			}
			alterFn := adm.AlterTopicConfigs // IncrementalAlterConfigs
			if !c.Increment {
				alterFn = adm.AlterTopicConfigsState // AlterConfigs: the whole set of overrides
			}
			rs, err := alterFn(ctx, alter, c.Name)
			if err == nil {
				err = rs[0].Err
			}
			if err != nil {
				return failure(err)
			}
			return map[string]any{}
		},
		"describe_cluster": func(command) any {
			resp, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
			if err == nil {
				err = kerr.ErrorForCode(resp.ErrorCode)
			}
			if err != nil {
				return failure(err)
			}
			brokers := []map[string]any{}
			for _, b := range resp.Brokers {
				brokers = append(brokers, map[string]any{"id": b.NodeID, "host": b.Host, "port": b.Port})
			}
			md, err := adm.BrokerMetadata(ctx)
			if err != nil {
				return failure(err)
			}
			return map[string]any{"brokers": brokers, "controller": resp.ControllerID, "cluster": resp.ClusterID,
				"metadataController": md.Controller, "metadataBrokers": len(md.Brokers)}
		},
		"list_offsets": func(c command) any {
			var l kadm.ListedOffsets
			var err error
			switch c.Spec {
			case "earliest":
				l, err = adm.ListStartOffsets(ctx, c.Name)
			case "latest":
				l, err = adm.ListEndOffsets(ctx, c.Name)
			case "max":
				l, err = adm.ListMaxTimestampOffsets(ctx, c.Name)
			default:
				ts, perr := strconv.ParseInt(c.Spec, 10, 64)
				if perr != nil {
					return failure(perr)
				}
				l, err = adm.ListOffsetsAfterMilli(ctx, ts, c.Name)
			}
			if err == nil {
				err = l.Error()
			}
			if err != nil {
				return failure(err)
			}
			out := map[string]int64{}
			for _, o := range l[c.Name] {
				out[strconv.Itoa(int(o.Partition))] = o.Offset
			}
			return map[string]any{"offsets": out}
		},
		"delete_records": func(c command) any {
			var os kadm.Offsets
			for p, o := range partitionOffsets(c.Offsets) {
				os.AddOffset(c.Name, p, o, -1)
			}
			rs, err := adm.DeleteRecords(ctx, os)
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for _, r := range rs[c.Name] {
				if r.Err != nil {
					out[strconv.Itoa(int(r.Partition))] = failure(r.Err)
				} else {
					out[strconv.Itoa(int(r.Partition))] = r.LowWatermark
				}
			}
			return map[string]any{"lowWatermarks": out}
		},
		"list_groups": func(command) any {
			gs, err := adm.ListGroups(ctx)
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for g, l := range gs {
				out[g] = map[string]any{"protocolType": l.ProtocolType, "state": l.State, "type": l.GroupType}
			}
			return map[string]any{"groups": out}
		},
		"describe_groups": func(c command) any {
			ds, err := adm.DescribeGroups(ctx, c.Names...)
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for g, d := range ds {
				if d.Err != nil {
					out[g] = failure(d.Err)
					continue
				}
				members := []map[string]any{}
				for _, m := range d.Members {
					assigned := []int32{}
					if ca, ok := m.Assigned.AsConsumer(); ok {
						for _, t := range ca.Topics {
							assigned = append(assigned, t.Partitions...)
						}
					}
					members = append(members, map[string]any{"memberId": m.MemberID, "clientId": m.ClientID,
						"clientHost": m.ClientHost, "assignment": partitionsOf(assigned)})
				}
				out[g] = map[string]any{"state": d.State, "protocolType": d.ProtocolType, "protocol": d.Protocol,
					"members": members}
			}
			return map[string]any{"groups": out}
		},
		"describe_consumer_groups": func(c command) any {
			ds, err := adm.DescribeConsumerGroups(ctx, c.Names...)
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for g, d := range ds {
				if d.Err != nil {
					out[g] = failure(d.Err)
					continue
				}
				members := []map[string]any{}
				for _, m := range d.Members {
					assigned := []int32{}
					m.Assignment.Each(func(_ string, p int32) { assigned = append(assigned, p) })
					members = append(members, map[string]any{"memberId": m.MemberID, "clientId": m.ClientID,
						"memberEpoch": m.MemberEpoch, "assignment": partitionsOf(assigned)})
				}
				out[g] = map[string]any{"state": d.State, "assignor": d.AssignorName, "epoch": d.Epoch,
					"members": members}
			}
			return map[string]any{"groups": out}
		},
		"fetch_offsets": func(c command) any {
			os, err := adm.FetchOffsets(ctx, c.Name)
			if err == nil {
				err = os.Error()
			}
			if err != nil {
				return failure(err)
			}
			out := map[string]map[string][2]any{}
			os.Each(func(o kadm.OffsetResponse) {
				if out[o.Topic] == nil {
					out[o.Topic] = map[string][2]any{}
				}
				out[o.Topic][strconv.Itoa(int(o.Partition))] = [2]any{o.At, o.Metadata}
			})
			return map[string]any{"offsets": out}
		},
		"delete_groups": func(c command) any {
			rs, err := adm.DeleteGroups(ctx, c.Names...)
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for g, r := range rs {
				if r.Err != nil {
					out[g] = failure(r.Err)
				} else {
					out[g] = nil
				}
			}
			return map[string]any{"results": out}
		},
		"delete_offsets": func(c command) any {
			topic := c.Topic
			set := kadm.TopicsSet{topic: {}}
			for _, p := range c.Parts {
				set[topic][p] = struct{}{}
			}
			rs, err := adm.DeleteOffsets(ctx, c.Name, set)
			if err != nil {
				return failure(err)
			}
			out := map[string]any{}
			for p, e := range rs[topic] {
				out[strconv.Itoa(int(p))] = nil
				if e != nil {
					out[strconv.Itoa(int(p))] = failure(e)
				}
			}
			return map[string]any{"results": out}
		},
		"describe_log_dirs": func(c command) any {
			all, err := adm.DescribeAllLogDirs(ctx, nil) // every partition (a topic without partitions is none)
			if err != nil {
				return failure(err)
			}
			out := map[string]map[string]int64{}
			for _, dirs := range all {
				if err := dirs.Error(); err != nil {
					return failure(err)
				}
				dirs.EachPartition(func(d kadm.DescribedLogDirPartition) {
					if d.Topic != c.Name {
						return
					}
					if out[d.Dir] == nil {
						out[d.Dir] = map[string]int64{}
					}
					out[d.Dir][strconv.Itoa(int(d.Partition))] = d.Size
				})
			}
			return map[string]any{"dirs": out}
		},
		"close": func(command) any { return map[string]any{} },
	})
	return nil
}
