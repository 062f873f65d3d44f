// Shared by the Java peers (siddhi, flink): event-time parsing, the latency histogram and
// the result line. Same algorithms as common/peer_common.rs used by the Rust peers.

public final class PeerCommon {
    private PeerCommon() {}

    public static final String STATION_PREFIX = "460-00-4125-";
    public static final long WINDOW_MS = 30L * 86_400_000L;
    public static final int THRESHOLD = 3;

    /** YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) -> Unix milliseconds, or Long.MIN_VALUE. */
    public static long parseTsMillis(String s) {
        try {
            int y = num(s, 0, 4), mo = num(s, 5, 7), d = num(s, 8, 10);
            int h = num(s, 11, 13), mi = num(s, 14, 16), se = num(s, 17, 19);
            int i = 19;
            if (i < s.length() && s.charAt(i) == '.') {
                i++;
                while (i < s.length() && Character.isDigit(s.charAt(i))) i++;
            }
            char c = s.charAt(i);
            long off;
            if (c == 'Z') off = 0;
            else if (c == '+' || c == '-') {
                off = num(s, i + 1, i + 3) * 3600L + num(s, i + 4, i + 6) * 60L;
                if (c == '-') off = -off;
            } else return Long.MIN_VALUE;
            long yy = mo <= 2 ? y - 1 : y;
            long era = Math.floorDiv(yy, 400);
            long yoe = yy - era * 400;
            long doy = (153L * ((mo + 9) % 12) + 2) / 5 + d - 1;
            long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            long days = era * 146_097 + doe - 719_468;
            return (days * 86_400 + h * 3600L + mi * 60L + se - off) * 1000L;
        } catch (RuntimeException e) {
            return Long.MIN_VALUE;
        }
    }

    private static int num(String s, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) {
            char c = s.charAt(i);
            if (c < '0' || c > '9') throw new IllegalArgumentException();
            n = n * 10 + (c - '0');
        }
        return n;
    }

    /** Log-linear latency histogram in nanoseconds (32 sub-buckets per power of two, ~3 %). */
    public static final class Hist {
        final long[] counts = new long[64 * 32];
        long total;

        static int bucket(long v) {
            if (v < 32) return (int) Math.max(v, 0);
            int e = 63 - Long.numberOfLeadingZeros(v);
            int sub = (int) ((v >>> (e - 5)) & 31);
            return (e - 4) * 32 + sub;
        }

        static long upper(int idx) {
            if (idx < 32) return idx;
            int e = idx / 32 + 4;
            long sub = idx % 32;
            return ((32 + sub + 1) << (e - 5)) - 1;
        }

        public void record(long nanos) {
            counts[bucket(nanos)]++;
            total++;
        }

        public synchronized void merge(Hist o) {
            for (int i = 0; i < counts.length; i++) counts[i] += o.counts[i];
            total += o.total;
        }

        public long quantile(double q) {
            long want = Math.max(1, (long) Math.ceil(total * q));
            long seen = 0;
            for (int i = 0; i < counts.length; i++) {
                seen += counts[i];
                if (seen >= want) return upper(i);
            }
            return 0;
        }

        public long total() {
            return total;
        }
    }

    public static String result(String engine, long events, long bad, double seconds, Hist hist,
                                long matches, long station, String extra) {
        String p99 = hist == null || hist.total() == 0 ? "null"
                : String.format(java.util.Locale.ROOT, "%.2f", hist.quantile(0.99) / 1000.0);
        return String.format(java.util.Locale.ROOT,
                "{\"engine\":\"%s\",\"events\":%d,\"bad\":%d,\"seconds\":%.4f,\"events_per_s\":%.0f,"
                        + "\"p99_us\":%s,\"matches_12593\":%d,\"station_hits\":%d%s}",
                engine, events, bad, seconds, events / seconds, p99, matches, station,
                extra == null ? "" : extra);
    }
}
