// Peer harness: Apache Flink 2.3 DataStream and CEP (jars from the PyPI package
// apache-flink==2.3.0, classpath pyflink/lib/*), run on a local MiniCluster in this JVM.
//
//   FileSource(text lines, each stamped with System.nanoTime() as it is read)
//     -> rebalance -> parse (Flink's shaded Jackson, ts -> epoch millis)          [parallel]
//     -> classify: 12593 call -> main output; station cell -> side output -> count sink
//     -> keyBy(msisdn)
//        mode "datastream": KeyedProcessFunction, ValueState<long[]> of the call times in
//                           the last 30 days (event time from the record), match when >= 3
//        mode "cep":        CEP pattern: 3 consecutive calls (stream already holds only
//                           calls) within 30 days, no-skip, in event time (monotonous
//                           watermarks) -> one match per call that brings the count to >= 3
//     -> count sink
//
// Latency: every event carries its read time; the operator where its processing ends (the
// classifier for events that are dropped or are station hits, the keyed function for calls)
// records now - read time. In CEP mode a call that does not match never comes out, so per-event
// latency is not observable there: p99 is reported as null, and the matches' latency separately.
//
// Usage: java -cp "classes:pyflink/lib/*" Harness EVENTS.jsonl [datastream|cep] [parallelism]
//        -> one JSON object on stdout.

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.functions.RichMapFunction;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.cep.CEP;
import org.apache.flink.cep.functions.PatternProcessFunction;
import org.apache.flink.cep.nfa.aftermatch.AfterMatchSkipStrategy;
import org.apache.flink.cep.pattern.Pattern;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.SimpleStreamFormat;
import org.apache.flink.connector.file.src.reader.StreamFormat;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.FSDataInputStream;
import org.apache.flink.core.fs.Path;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.util.Collector;
import org.apache.flink.util.OutputTag;

import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

public class Harness {
    // The MiniCluster runs in this JVM and user classes come from the application class
    // loader, so operators report into these statics.
    static final AtomicLong FIRST_READ = new AtomicLong();
    static final AtomicLong EVENTS = new AtomicLong(), BAD = new AtomicLong();
    static final AtomicLong MATCHES = new AtomicLong(), STATION = new AtomicLong();
    static final PeerCommon.Hist HIST = new PeerCommon.Hist();
    static final PeerCommon.Hist MATCH_HIST = new PeerCommon.Hist();

    /** A line and the System.nanoTime() at which the source read it. */
    public static class Line {
        public String text;
        public long readNanos;

        public Line() {}

        Line(String text, long readNanos) {
            this.text = text;
            this.readNanos = readNanos;
        }
    }

    /** A decoded event (a Flink POJO: public fields, no-arg constructor). */
    public static class Ev {
        public String kind, msisdn, service, direction, scope, cell;
        public long ts, readNanos;

        public Ev() {}
    }

    /** TextLineInputFormat, each line stamped with its read time. */
    public static class StampedLines extends SimpleStreamFormat<Line> {
        private final TextLineInputFormat lines = new TextLineInputFormat();

        @Override
        public StreamFormat.Reader<Line> createReader(Configuration config, FSDataInputStream stream) throws IOException {
            StreamFormat.Reader<String> inner = lines.createReader(config, stream);
            return new StreamFormat.Reader<Line>() {
                @Override
                public Line read() throws IOException {
                    long t0 = System.nanoTime();
                    FIRST_READ.compareAndSet(0, t0);
                    String s = inner.read();
                    return s == null ? null : new Line(s, t0);
                }

                @Override
                public void close() throws IOException {
                    inner.close();
                }
            };
        }

        @Override
        public TypeInformation<Line> getProducedType() {
            return TypeInformation.of(Line.class);
        }
    }

    static String str(JsonNode o, String k) {
        JsonNode n = o.get(k);
        return n == null || !n.isValueNode() || n.isNull() ? null : n.asText();
    }

    public static class Parse extends RichMapFunction<Line, Ev> {
        private transient ObjectMapper mapper;

        @Override
        public void open(OpenContext ctx) {
            mapper = new ObjectMapper();
        }

        @Override
        public Ev map(Line line) {
            EVENTS.incrementAndGet();
            Ev ev = new Ev();
            ev.readNanos = line.readNanos;
            try {
                JsonNode o = mapper.readTree(line.text);
                ev.kind = str(o, "kind");
                ev.msisdn = str(o, "msisdn");
                ev.service = str(o, "service");
                ev.direction = str(o, "direction");
                ev.scope = str(o, "scope");
                ev.cell = str(o, "cell");
                String ts = str(o, "ts");
                ev.ts = ts == null ? Long.MIN_VALUE : PeerCommon.parseTsMillis(ts);
            } catch (IOException | RuntimeException e) {
                ev.kind = null;
            }
            if (ev.kind == null || ev.msisdn == null || ev.ts == Long.MIN_VALUE) {
                BAD.incrementAndGet();
                ev.kind = "";
            }
            return ev;
        }
    }

    static final OutputTag<Ev> STATION_TAG = new OutputTag<Ev>("station", TypeInformation.of(Ev.class)) {};

    /** The two filters. Calls go on to the keyed step; everything else ends here. */
    public static class Classify extends ProcessFunction<Ev, Ev> {
        private transient PeerCommon.Hist hist;

        @Override
        public void open(OpenContext ctx) {
            hist = new PeerCommon.Hist();
        }

        @Override
        public void processElement(Ev ev, Context ctx, Collector<Ev> out) {
            if ("usage".equals(ev.kind) && "voice".equals(ev.service) && "mo".equals(ev.direction)
                    && ("long_distance".equals(ev.scope) || "roaming_domestic".equals(ev.scope))) {
                out.collect(ev);
                return;
            }
            if ("location".equals(ev.kind) && ev.cell != null && ev.cell.startsWith(PeerCommon.STATION_PREFIX)) {
                ctx.output(STATION_TAG, ev);
            }
            hist.record(System.nanoTime() - ev.readNanos);
        }

        @Override
        public void close() {
            HIST.merge(hist);
        }
    }

    /** mode datastream: keyed state per msisdn, the call times of the last 30 days. */
    @SuppressWarnings("unchecked")
    public static class Window12593 extends KeyedProcessFunction<String, Ev, Long> {
        private transient ValueState<long[]> times;
        private transient PeerCommon.Hist hist;

        @Override
        public void open(OpenContext ctx) {
            times = getRuntimeContext().getState(new ValueStateDescriptor<long[]>("calls", (TypeInformation<long[]>) (TypeInformation<?>) Types.PRIMITIVE_ARRAY(Types.LONG)));
            hist = new PeerCommon.Hist();
        }

        @Override
        public void processElement(Ev ev, Context ctx, Collector<Long> out) throws Exception {
            long[] old = times.value();
            int keep = 0;
            if (old != null) {
                for (long t : old) if (t > ev.ts - PeerCommon.WINDOW_MS) keep++;
            }
            long[] now = new long[keep + 1];
            int i = 0;
            if (old != null) {
                for (long t : old) if (t > ev.ts - PeerCommon.WINDOW_MS) now[i++] = t;
            }
            now[i] = ev.ts;
            times.update(now);
            if (now.length >= PeerCommon.THRESHOLD) out.collect(ev.ts);
            hist.record(System.nanoTime() - ev.readNanos);
        }

        @Override
        public void close() {
            HIST.merge(hist);
        }
    }

    /** Counts what reaches it. */
    public static class CountSink<T> implements Sink<T> {
        private final boolean station;

        CountSink(boolean station) {
            this.station = station;
        }

        @Override
        public SinkWriter<T> createWriter(WriterInitContext ctx) {
            AtomicLong counter = station ? STATION : MATCHES;
            return new SinkWriter<T>() {
                @Override
                public void write(T element, Context context) {
                    counter.incrementAndGet();
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {}
            };
        }
    }

    public static void main(String[] args) throws Exception {
        String file = args[0];
        String mode = args.length > 1 ? args[1] : "datastream";
        int parallelism = args.length > 2 ? Integer.parseInt(args[2]) : Runtime.getRuntime().availableProcessors();
        Configuration conf = new Configuration();
        StreamExecutionEnvironment env = StreamExecutionEnvironment.createLocalEnvironment(parallelism, conf);

        FileSource<Line> source = FileSource.forRecordStreamFormat(new StampedLines(), new Path(file)).build();
        DataStream<Ev> events = env.fromSource(source, WatermarkStrategy.noWatermarks(), "events")
                .setParallelism(1)
                .rebalance()
                .map(new Parse()).name("parse");
        if (mode.equals("cep")) {
            events = events.assignTimestampsAndWatermarks(
                    WatermarkStrategy.<Ev>forMonotonousTimestamps().withTimestampAssigner((ev, prev) -> ev.ts));
        }
        SingleOutputStreamOperator<Ev> calls = events.process(new Classify()).name("classify");
        calls.getSideOutput(STATION_TAG).sinkTo(new CountSink<>(true)).name("station-count");

        DataStream<Long> matches;
        if (mode.equals("cep")) {
            Pattern<Ev, Ev> threeIn30d = Pattern.<Ev>begin("calls", AfterMatchSkipStrategy.noSkip())
                    .times(PeerCommon.THRESHOLD).consecutive()
                    .within(Duration.ofMillis(PeerCommon.WINDOW_MS));
            matches = CEP.pattern(calls.keyBy(ev -> ev.msisdn), threeIn30d).inEventTime()
                    .process(new PatternProcessFunction<Ev, Long>() {
                        @Override
                        public void processMatch(Map<String, List<Ev>> match, Context ctx, Collector<Long> out) {
                            List<Ev> evs = match.get("calls");
                            Ev last = evs.get(evs.size() - 1);
                            synchronized (MATCH_HIST) {
                                MATCH_HIST.record(System.nanoTime() - last.readNanos);
                            }
                            out.collect(last.ts);
                        }
                    }, Types.LONG).name("cep-12593");
        } else {
            matches = calls.keyBy(ev -> ev.msisdn).process(new Window12593(), Types.LONG).name("window-12593");
        }
        matches.sinkTo(new CountSink<>(false)).name("match-count");

        long start = System.nanoTime();
        env.execute("tidings-peer-flink-" + mode);
        long end = System.nanoTime();
        long first = FIRST_READ.get() == 0 ? start : FIRST_READ.get();
        double seconds = (end - first) / 1e9;
        String extra = String.format(java.util.Locale.ROOT,
                ",\"mode\":\"%s\",\"parallelism\":%d,\"job_seconds\":%.4f,\"match_p99_us\":%s",
                mode, parallelism, (end - start) / 1e9,
                MATCH_HIST.total() == 0 ? "null" : String.format(java.util.Locale.ROOT, "%.2f", MATCH_HIST.quantile(0.99) / 1000.0));
        PeerCommon.Hist hist = mode.equals("cep") ? null : HIST;
        System.out.println(PeerCommon.result(mode.equals("cep") ? "flink-cep" : "flink-datastream",
                EVENTS.get(), BAD.get(), seconds, hist, MATCHES.get(), STATION.get(), extra));
        System.exit(0);
    }
}
