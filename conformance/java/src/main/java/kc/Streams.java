package kc;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

/** Kafka Streams applications, run in the driver's JVM until their output is there. */
final class Streams {
  private final Driver driver;

  Streams(Driver driver) {
    this.driver = driver;
  }

  void register(Map<String, Driver.Op> ops) {
    ops.put("streams.upper", this::upper);
  }

  /** A stateless topology (input -> values upper-cased -> output) with the given streams config
   * (e.g. processing.guarantee=exactly_once_v2), run until a read_committed consumer has read
   * `count` records of the output's partition 0..partitions-1; returns their values, in order. */
  private Object upper(JsonNode a) throws Exception {
    String input = a.get("input").asText();
    String output = a.get("output").asText();
    int count = a.get("count").asInt();
    int partitions = a.path("partitions").asInt(1);
    Properties props = new Properties();
    props.putAll(driver.config(a));
    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.String()))
        .mapValues(v -> v.toUpperCase())
        .to(output, Produced.with(Serdes.ByteArray(), Serdes.String()));
    List<Object> values = new ArrayList<>();
    long deadline = System.currentTimeMillis() + a.path("timeoutMs").asLong(60_000);
    try (KafkaStreams streams = new KafkaStreams(builder.build(), props)) {
      streams.start();
      Map<String, Object> conf = driver.config(a);
      conf.keySet().removeIf(k -> !k.equals("bootstrap.servers"));
      conf.put("isolation.level", "read_committed");
      try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(conf, new ByteArrayDeserializer(), new ByteArrayDeserializer())) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(output, p));
        c.assign(tps);
        c.seekToBeginning(tps);
        while (values.size() < count && System.currentTimeMillis() < deadline) {
          for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(200))) {
            values.add(new String(r.value(), StandardCharsets.UTF_8));
          }
        }
      }
      streams.close(Duration.ofSeconds(10));
    }
    return values;
  }
}
