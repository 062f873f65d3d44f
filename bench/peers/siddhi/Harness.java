// Peer harness: Siddhi 5.1.7 (jars from the PyPI wheel pysiddhi==5.1.0).
//
// Reads the events file, parses each line with gson (Siddhi's own JSON dependency; the
// siddhi-map-json extension is not in the wheel), converts ts to epoch millis, and sends one
// Siddhi event per line through an InputHandler. The rules are SiddhiQL (see APP below): a
// filter + #window.externalTime(ts, 30 days) + group by msisdn + having count >= 3 for 12593,
// and a filter with a startsWith function for the station cells (core Siddhi has no string
// functions; the siddhi-execution-string extension is not in the wheel, so the harness
// registers a 10-line one). InputHandler.send is synchronous (no @async), so the time from
// reading a line to send() returning is that event's full processing latency.
//
// Usage: java -cp "classes:jars/*" Harness EVENTS.jsonl  -> one JSON object on stdout.

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.siddhi.core.SiddhiAppRuntime;
import io.siddhi.core.SiddhiManager;
import io.siddhi.core.config.SiddhiQueryContext;
import io.siddhi.core.event.Event;
import io.siddhi.core.executor.ExpressionExecutor;
import io.siddhi.core.executor.function.FunctionExecutor;
import io.siddhi.core.stream.input.InputHandler;
import io.siddhi.core.stream.output.StreamCallback;
import io.siddhi.core.util.config.ConfigReader;
import io.siddhi.core.util.snapshot.state.State;
import io.siddhi.core.util.snapshot.state.StateFactory;
import io.siddhi.query.api.definition.Attribute;

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.atomic.AtomicLong;

public class Harness {
    static final String APP = String.join("\n",
            "@app:name('tidings_peer')",
            "define stream EventStream (kind string, ts long, msisdn string, service string,",
            "    direction string, scope string, cell string);",
            "",
            "@info(name = 'ip_long_distance_12593')",
            "from EventStream[kind == 'usage' and service == 'voice' and direction == 'mo'",
            "    and (scope == 'long_distance' or scope == 'roaming_domestic')]",
            "    #window.externalTime(ts, 30 days)",
            "select msisdn, count() as calls",
            "group by msisdn",
            "having calls >= " + PeerCommon.THRESHOLD,
            "insert into MatchStream;",
            "",
            "@info(name = 'station_entry')",
            "from EventStream[kind == 'location' and peer:startsWith(cell, '" + PeerCommon.STATION_PREFIX + "')]",
            "select msisdn, cell",
            "insert into StationStream;");

    /** peer:startsWith(str, prefix) -> bool (core Siddhi has no string functions). */
    public static class StartsWith extends FunctionExecutor<State> {
        @Override
        protected StateFactory<State> init(ExpressionExecutor[] args, ConfigReader cfg, SiddhiQueryContext ctx) {
            return null;
        }

        @Override
        protected Object execute(Object[] data, State state) {
            return data[0] != null && data[1] != null && ((String) data[0]).startsWith((String) data[1]);
        }

        @Override
        protected Object execute(Object data, State state) {
            return false;
        }

        @Override
        public Attribute.Type getReturnType() {
            return Attribute.Type.BOOL;
        }
    }

    static String str(JsonObject o, String k) {
        JsonElement e = o.get(k);
        return e == null || e.isJsonNull() || !e.isJsonPrimitive() ? null : e.getAsString();
    }

    public static void main(String[] args) throws Exception {
        SiddhiManager manager = new SiddhiManager();
        manager.setExtension("peer:startsWith", StartsWith.class);
        SiddhiAppRuntime runtime = manager.createSiddhiAppRuntime(APP);
        AtomicLong matches = new AtomicLong(), station = new AtomicLong();
        runtime.addCallback("MatchStream", new StreamCallback() {
            @Override
            public void receive(Event[] events) {
                matches.addAndGet(events.length);
            }
        });
        runtime.addCallback("StationStream", new StreamCallback() {
            @Override
            public void receive(Event[] events) {
                station.addAndGet(events.length);
            }
        });
        InputHandler input = runtime.getInputHandler("EventStream");
        runtime.start();

        JsonParser parser = new JsonParser();
        PeerCommon.Hist hist = new PeerCommon.Hist();
        long events = 0, bad = 0;
        long start = System.nanoTime();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(
                new FileInputStream(args[0]), StandardCharsets.UTF_8), 1 << 20)) {
            while (true) {
                long t0 = System.nanoTime();
                String line = in.readLine();
                if (line == null) break;
                events++;
                JsonObject o;
                long ts;
                try {
                    o = parser.parse(line).getAsJsonObject();
                    ts = PeerCommon.parseTsMillis(str(o, "ts"));
                } catch (RuntimeException e) {
                    bad++;
                    continue;
                }
                if (ts == Long.MIN_VALUE || str(o, "msisdn") == null || str(o, "kind") == null) {
                    bad++;
                    continue;
                }
                input.send(ts, new Object[]{str(o, "kind"), ts, str(o, "msisdn"), str(o, "service"),
                        str(o, "direction"), str(o, "scope"), str(o, "cell")});
                hist.record(System.nanoTime() - t0);
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        runtime.shutdown();
        manager.shutdown();
        System.out.println(PeerCommon.result("siddhi", events, bad, seconds, hist, matches.get(),
                station.get(), null));
    }
}
