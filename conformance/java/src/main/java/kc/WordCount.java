package kc;

import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.CloseOptions.GroupMembershipOperation;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;

/**
 * Kafka Streams' word count as a process of its own: lines from the input topic are split into
 * words, re-keyed by word (through the {@code <app>-words-repartition} topic) and counted in the
 * {@code counts} state store (backed by the {@code <app>-counts-changelog} topic); every new count
 * goes to the output topic as word -> long.
 *
 * <p>Arguments: bootstrap servers, application id, state directory, input topic, output topic,
 * then any {@code key=value} Streams settings. The record cache is off, so each input word gives
 * exactly one output record, and commits are frequent. Each state change is printed on stdout as
 * {@code STATE <new state>}; SIGTERM closes the application (committing what it processed, then
 * leaving the group, so that a successor need not wait out its session) and prints {@code CLOSED}.
 */
public final class WordCount {
  public static void main(String[] argv) throws Exception {
    Properties props = new Properties();
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, argv[0]);
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, argv[1]);
    props.put(StreamsConfig.STATE_DIR_CONFIG, argv[2]);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
    props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, "1");
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, "0");
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, "200");
    for (String setting : Arrays.copyOfRange(argv, 5, argv.length)) {
      String[] kv = setting.split("=", 2);
      props.put(kv[0], kv[1]);
    }

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(argv[3], Consumed.with(Serdes.String(), Serdes.String()))
        .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
        .filter((key, word) -> !word.isEmpty())
        .groupBy((key, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
        .count(Materialized.as("counts"))
        .toStream()
        .to(argv[4], Produced.with(Serdes.String(), Serdes.Long()));

    KafkaStreams streams = new KafkaStreams(builder.build(), props);
    CountDownLatch closed = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      System.out.println("STATE " + now);
      System.out.flush();
    });
    streams.setUncaughtExceptionHandler(e -> {
      e.printStackTrace();
      return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close(CloseOptions.timeout(Duration.ofSeconds(60))
          .withGroupMembershipOperation(GroupMembershipOperation.LEAVE_GROUP));
      System.out.println("CLOSED");
      System.out.flush();
      closed.countDown();
    }));
    streams.start();
    closed.await();
  }
}
