package kc;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.utils.internals.Exit;

/**
 * Kafka's command-line tools run inside the driver's JVM, as their scripts would run them: the
 * tool's {@code main(args)} with the given stdin, its stdout and stderr captured, and its
 * first {@code Exit.exit(code)} taken as the end of the process: its code and the output written
 * until then are the answer, and the JVM goes on (Kafka's own tool tests replace Exit the same
 * way). One warm JVM runs a scenario's tools in milliseconds each.
 */
final class Tools {
  private static final class Exited extends RuntimeException {
    Exited() {
      super(null, null, false, false);
    }
  }

  /** The first Exit.exit of a run: where the process would have ended (code, output so far). */
  private record End(int code, int outSize, int errSize) { }

  void register(Map<String, Driver.Op> ops) {
    ops.put("tool", this::run);
  }

  private Object run(JsonNode a) throws Exception {
    List<String> args = new ArrayList<>();
    a.path("args").forEach(x -> args.add(x.asText()));
    byte[] input = a.path("input").asText("").getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    PrintStream savedOut = System.out;
    PrintStream savedErr = System.err;
    InputStream savedIn = System.in;
    End[] end = {null};
    List<Runnable> hooks = new ArrayList<>();
    Exit.Procedure exit = (code, message) -> {
      if (end[0] == null) {
        runHooks(hooks); // as the JVM would on exit: e.g. the console producer's close() flushes
        end[0] = new End(code, out.size(), err.size());
      }
      throw new Exited(); // a tool may catch it: whatever it does afterwards, the process had ended
    };
    Exit.setExitProcedure(exit);
    Exit.setHaltProcedure(exit);
    Exit.setShutdownHookAdder((name, runnable) -> hooks.add(runnable));
    try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
         PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
      System.setOut(o);
      System.setErr(e);
      System.setIn(new ByteArrayInputStream(input));
      try {
        Class.forName(a.get("main").asText()).getMethod("main", String[].class).invoke(null, (Object) args.toArray(new String[0]));
      } catch (InvocationTargetException ex) {
        if (end[0] == null) {
          ex.getCause().printStackTrace(e);
          runHooks(hooks);
          end[0] = new End(1, out.size(), err.size());
        }
      }
      if (end[0] == null) {
        runHooks(hooks);
        end[0] = new End(0, out.size(), err.size());
      }
    } finally {
      System.setOut(savedOut);
      System.setErr(savedErr);
      System.setIn(savedIn);
      Exit.resetExitProcedure();
      Exit.resetHaltProcedure();
      Exit.resetShutdownHookAdder();
    }
    End done = end[0];
    Map<String, Object> result = new LinkedHashMap<>();
    result.put("code", done.code());
    result.put("stdout", new String(out.toByteArray(), 0, done.outSize(), StandardCharsets.UTF_8));
    result.put("stderr", new String(err.toByteArray(), 0, done.errSize(), StandardCharsets.UTF_8));
    return result;
  }

  private static void runHooks(List<Runnable> hooks) {
    for (Runnable hook : hooks) {
      try {
        hook.run();
      } catch (RuntimeException ex) {
        ex.printStackTrace();
      }
    }
    hooks.clear();
  }
}
