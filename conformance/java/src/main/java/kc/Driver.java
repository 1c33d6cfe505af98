package kc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * A scenario driver: one JVM per scenario file, talking to the suite over stdin/stdout.
 *
 * <p>Each stdin line is a JSON command {@code {"op": NAME, ...arguments}}; each answer is one
 * stdout line, {@code {"result": ...}} or {@code {"error": {"type": SimpleClassName, "message":
 * ...}}} with the exception the Kafka client raised (unwrapped from ExecutionException, as an
 * application sees it from {@code future.get()}'s cause). Logs go to stderr only. The operations
 * live in {@link Clients} (producers, consumers, groups), {@link Admins} (the AdminClient) and
 * {@link Tools} (Kafka's command-line tools, run in this JVM).
 */
public final class Driver {
  interface Op {
    Object apply(JsonNode args) throws Exception;
  }

  static final ObjectMapper JSON = new ObjectMapper().disable(SerializationFeature.FAIL_ON_EMPTY_BEANS);

  final String bootstrap;
  /** Client properties every client of this driver takes (security settings: Kafka's --command-config file). */
  final Map<String, Object> common = new HashMap<>();
  final Map<String, Op> ops = new HashMap<>();

  Driver(String bootstrap) {
    this.bootstrap = bootstrap;
  }

  public static void main(String[] argv) throws Exception {
    Driver driver = new Driver(argv[0]);
    if (argv.length > 1) {
      java.util.Properties props = new java.util.Properties();
      try (var in = java.nio.file.Files.newInputStream(java.nio.file.Path.of(argv[1]))) {
        props.load(in);
      }
      props.forEach((k, v) -> driver.common.put((String) k, v));
    }
    Clients clients = new Clients(driver);
    Admins admins = new Admins(driver);
    clients.register(driver.ops);
    admins.register(driver.ops);
    new Tools().register(driver.ops);
    new Streams(driver).register(driver.ops);
    PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8);
    System.setOut(System.err); // nothing but answers on the real stdout
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    try {
      for (String line; (line = in.readLine()) != null; ) {
        JsonNode cmd = JSON.readTree(line);
        String name = cmd.path("op").asText();
        if (name.equals("exit")) {
          out.println(JSON.writeValueAsString(Map.of("result", "bye")));
          break;
        }
        Map<String, Object> answer = new LinkedHashMap<>();
        Op op = driver.ops.get(name);
        try {
          if (op == null) throw new IllegalArgumentException("no such op: " + name);
          answer.put("result", op.apply(cmd));
        } catch (Exception | LinkageError e) {
          Throwable t = unwrap(e);
          answer.put("error", Map.of("type", t.getClass().getSimpleName(), "message", String.valueOf(t.getMessage())));
        }
        out.println(JSON.writeValueAsString(answer));
      }
    } finally {
      clients.close();
      admins.close();
    }
  }

  static Throwable unwrap(Throwable t) {
    while ((t instanceof ExecutionException || t instanceof CompletionException) && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }

  /** A client configuration: the bootstrap servers, the common properties, then the command's "config" object. */
  Map<String, Object> config(JsonNode args) {
    Map<String, Object> conf = new HashMap<>();
    conf.put("bootstrap.servers", bootstrap);
    conf.putAll(common);
    args.path("config").fields().forEachRemaining(e -> conf.put(e.getKey(), e.getValue().asText()));
    return conf;
  }
}
