package kc;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Future;
import java.util.regex.Pattern;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Producers and consumers as an application uses them: byte[] keys and values (given and shown as
 * UTF-8 text), headers, CreateTimes; one-shot produce and read, and named long-lived consumers for
 * groups, seeks and offset look-ups.
 */
final class Clients {
  private final Driver driver;
  private final Map<String, Member> consumers = new HashMap<>();

  /** A named consumer and what its rebalance listener saw since the last poll. */
  private static final class Member {
    final KafkaConsumer<byte[], byte[]> consumer;
    final List<Map<String, Object>> events = new ArrayList<>();
    final boolean grouped;

    Member(KafkaConsumer<byte[], byte[]> consumer, boolean grouped) {
      this.consumer = consumer;
      this.grouped = grouped;
    }

    ConsumerRebalanceListener listener() {
      return new ConsumerRebalanceListener() {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> parts) {
          events.add(Map.of("type", "revoked", "partitions", tps(parts)));
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> parts) {
          events.add(Map.of("type", "assigned", "partitions", tps(parts)));
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> parts) {
          events.add(Map.of("type", "lost", "partitions", tps(parts)));
        }
      };
    }
  }

  Clients(Driver driver) {
    this.driver = driver;
  }

  void register(Map<String, Driver.Op> ops) {
    ops.put("produce", this::produce);
    ops.put("transactions", this::transactions);
    ops.put("read", this::read);
    ops.put("consumer.open", this::open);
    ops.put("consumer.poll", this::poll);
    ops.put("consumer.assign", a -> {
      member(a).consumer.assign(tpList(a.get("partitions")));
      return null;
    });
    ops.put("consumer.seek", a -> {
      member(a).consumer.seek(new TopicPartition(a.get("topic").asText(), a.get("partition").asInt()),
          a.get("offset").asLong());
      return null;
    });
    ops.put("consumer.seekToBeginning", a -> {
      member(a).consumer.seekToBeginning(tpList(a.get("partitions")));
      return null;
    });
    ops.put("consumer.seekToEnd", a -> {
      member(a).consumer.seekToEnd(tpList(a.get("partitions")));
      return null;
    });
    ops.put("consumer.position", a -> {
      List<Object> out = new ArrayList<>();
      for (TopicPartition tp : tpList(a.get("partitions"))) out.add(member(a).consumer.position(tp));
      return out;
    });
    ops.put("consumer.beginningOffsets", a -> offsets(member(a).consumer.beginningOffsets(tpList(a.get("partitions")))));
    ops.put("consumer.endOffsets", a -> offsets(member(a).consumer.endOffsets(tpList(a.get("partitions")))));
    ops.put("consumer.offsetsForTimes", this::offsetsForTimes);
    ops.put("consumer.commit", this::commit);
    ops.put("consumer.committed", a -> {
      List<Object> out = new ArrayList<>();
      member(a).consumer.committed(new java.util.HashSet<>(tpList(a.get("partitions")))).forEach((tp, om) ->
          out.add(List.of(tp.topic(), tp.partition(), om == null ? -1 : om.offset(), om == null ? "" : om.metadata())));
      return out;
    });
    ops.put("consumer.groupMetadata", a -> {
      var g = member(a).consumer.groupMetadata();
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("groupId", g.groupId());
      out.put("generationId", g.generationId());
      out.put("memberId", g.memberId());
      out.put("groupInstanceId", g.groupInstanceId().orElse(null));
      return out;
    });
    ops.put("consumer.unsubscribe", a -> {
      member(a).consumer.unsubscribe();
      return null;
    });
    ops.put("consumer.close", a -> {
      Member m = consumers.remove(a.get("name").asText());
      if (m != null) m.consumer.close(org.apache.kafka.clients.consumer.CloseOptions.timeout(Duration.ofSeconds(10)));
      return null;
    });
  }

  void close() {
    consumers.values().forEach(m -> m.consumer.close(Duration.ofSeconds(5)));
  }

  // -- producing -----------------------------------------------------------------------------------

  /** Sends every record (a flush after each `chunk`, so each chunk is one batch a partition) and
   * returns each record's metadata, in order. */
  private Object produce(JsonNode a) throws Exception {
    Map<String, Object> conf = driver.config(a);
    String topic = a.get("topic").asText();
    int chunk = a.path("chunk").asInt(Integer.MAX_VALUE);
    List<Map<String, Object>> acks = new ArrayList<>();
    try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(conf, new ByteArraySerializer(), new ByteArraySerializer())) {
      List<Future<RecordMetadata>> pending = new ArrayList<>();
      int i = 0;
      for (JsonNode r : a.get("records")) {
        Integer partition = r.path("partition").isNumber() ? r.get("partition").asInt() : null;
        Long ts = r.path("timestamp").isNumber() ? r.get("timestamp").asLong() : null;
        List<Header> headers = new ArrayList<>();
        for (JsonNode h : r.path("headers")) headers.add(new RecordHeader(h.get(0).asText(), bytes(h.get(1))));
        pending.add(p.send(new ProducerRecord<>(topic, partition, ts, bytes(r.get("key")), bytes(r.get("value")), headers)));
        if (++i % chunk == 0) p.flush();
      }
      p.flush();
      for (Future<RecordMetadata> f : pending) {
        RecordMetadata md = f.get();
        acks.add(Map.of("partition", md.partition(), "offset", md.offset(), "timestamp", md.timestamp()));
      }
    }
    return acks;
  }

  /** One transactional producer (config's transactional.id): for each of "transactions", a
   * transaction of its "values" (sent to partitions 0, 1, ... in turn, flushed) that is committed
   * or, with "commit" false, aborted. Returns the producer's id and epoch as the metrics show. */
  private Object transactions(JsonNode a) throws Exception {
    Map<String, Object> conf = driver.config(a);
    String topic = a.get("topic").asText();
    int partitions = a.path("partitions").asInt(1);
    try (KafkaProducer<byte[], byte[]> p = new KafkaProducer<>(conf, new ByteArraySerializer(), new ByteArraySerializer())) {
      p.initTransactions();
      int done = 0;
      for (JsonNode t : a.get("transactions")) {
        p.beginTransaction();
        int i = 0;
        for (JsonNode v : t.get("values")) p.send(new ProducerRecord<>(topic, i++ % partitions, null, bytes(v)));
        p.flush();
        if (t.path("commit").asBoolean(true)) p.commitTransaction(); else p.abortTransaction();
        done++;
      }
      return done;
    }
  }

  // -- consuming -----------------------------------------------------------------------------------

  /** Assigns the partitions (no group), seeks to the given offsets and reads `count` records. */
  private Object read(JsonNode a) {
    Map<String, Object> conf = driver.config(a);
    conf.putIfAbsent("auto.offset.reset", "none");
    String topic = a.get("topic").asText();
    int count = a.get("count").asInt();
    long deadline = System.currentTimeMillis() + a.path("timeoutMs").asLong(15_000);
    List<Object> out = new ArrayList<>();
    try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(conf, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
      List<TopicPartition> tps = new ArrayList<>();
      a.get("starts").fields().forEachRemaining(e -> tps.add(new TopicPartition(topic, Integer.parseInt(e.getKey()))));
      c.assign(tps);
      a.get("starts").fields().forEachRemaining(e ->
          c.seek(new TopicPartition(topic, Integer.parseInt(e.getKey())), e.getValue().asLong()));
      while (out.size() < count && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) out.add(record(r));
      }
    }
    return out;
  }

  private Object open(JsonNode a) {
    Map<String, Object> conf = driver.config(a);
    Member m = new Member(new KafkaConsumer<>(conf, new ByteArrayDeserializer(), new ByteArrayDeserializer()),
        conf.containsKey("group.id"));
    consumers.put(a.get("name").asText(), m);
    if (a.has("topics")) {
      List<String> topics = new ArrayList<>();
      a.get("topics").forEach(t -> topics.add(t.asText()));
      m.consumer.subscribe(topics, m.listener());
    } else if (a.has("pattern")) {
      m.consumer.subscribe(Pattern.compile(a.get("pattern").asText()), m.listener());
    }
    return null;
  }

  /** Polls each named consumer once; returns per name its records, assignment and rebalance events. */
  private Object poll(JsonNode a) {
    Map<String, Object> out = new LinkedHashMap<>();
    Duration timeout = Duration.ofMillis(a.path("ms").asLong(100));
    for (JsonNode n : a.get("names")) {
      Member m = consumers.get(n.asText());
      List<Object> records = new ArrayList<>();
      for (ConsumerRecord<byte[], byte[]> r : m.consumer.poll(timeout)) records.add(record(r));
      Map<String, Object> state = new LinkedHashMap<>();
      state.put("records", records);
      state.put("assignment", tps(m.consumer.assignment()));
      state.put("events", new ArrayList<>(m.events));
      state.put("generation", m.grouped ? m.consumer.groupMetadata().generationId() : null);
      m.events.clear();
      out.put(n.asText(), state);
    }
    return out;
  }

  private Object offsetsForTimes(JsonNode a) {
    String topic = a.get("topic").asText();
    Map<TopicPartition, Long> query = new HashMap<>();
    a.get("times").fields().forEachRemaining(e ->
        query.put(new TopicPartition(topic, Integer.parseInt(e.getKey())), e.getValue().asLong()));
    Map<String, Object> out = new java.util.TreeMap<>();
    member(a).consumer.offsetsForTimes(query).forEach((tp, ot) -> out.put(String.valueOf(tp.partition()),
        ot == null ? null : Map.of("offset", ot.offset(), "timestamp", ot.timestamp())));
    return out;
  }

  private Object commit(JsonNode a) {
    Member m = member(a);
    if (!a.has("offsets")) {
      m.consumer.commitSync(Duration.ofSeconds(15));
      return null;
    }
    Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
    for (JsonNode o : a.get("offsets")) {
      offsets.put(new TopicPartition(o.get(0).asText(), o.get(1).asInt()),
          new OffsetAndMetadata(o.get(2).asLong(), o.size() > 3 ? o.get(3).asText() : ""));
    }
    m.consumer.commitSync(offsets, Duration.ofSeconds(15));
    return null;
  }

  // -- helpers -------------------------------------------------------------------------------------

  private Member member(JsonNode a) {
    Member m = consumers.get(a.get("name").asText());
    if (m == null) throw new IllegalArgumentException("no consumer named " + a.get("name"));
    return m;
  }

  static byte[] bytes(JsonNode text) {
    return text == null || text.isNull() ? null : text.asText().getBytes(StandardCharsets.UTF_8);
  }

  static String text(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }

  static Map<String, Object> record(ConsumerRecord<byte[], byte[]> r) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("topic", r.topic());
    out.put("partition", r.partition());
    out.put("offset", r.offset());
    out.put("key", text(r.key()));
    out.put("value", text(r.value()));
    List<Object> headers = new ArrayList<>();
    for (Header h : r.headers()) headers.add(java.util.Arrays.asList(h.key(), text(h.value())));
    out.put("headers", headers);
    out.put("timestamp", r.timestamp());
    out.put("timestampType", r.timestampType().name);
    out.put("leaderEpoch", r.leaderEpoch().orElse(null));
    return out;
  }

  static List<Object> tps(Collection<TopicPartition> parts) {
    List<TopicPartition> sorted = new ArrayList<>(parts);
    sorted.sort(java.util.Comparator.comparing(TopicPartition::topic).thenComparingInt(TopicPartition::partition));
    List<Object> out = new ArrayList<>();
    for (TopicPartition tp : sorted) out.add(List.of(tp.topic(), tp.partition()));
    return out;
  }

  static List<TopicPartition> tpList(JsonNode pairs) {
    List<TopicPartition> out = new ArrayList<>();
    for (JsonNode p : pairs) out.add(new TopicPartition(p.get(0).asText(), p.get(1).asInt()));
    return out;
  }

  static Map<String, Object> offsets(Map<TopicPartition, Long> offsets) {
    Map<String, Object> out = new java.util.TreeMap<>();
    offsets.forEach((tp, o) -> out.put(tp.topic() + "/" + tp.partition(), o));
    return out;
  }
}
