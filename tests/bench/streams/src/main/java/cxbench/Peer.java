/*
 * Peer.java — the Kafka Streams peer of cxstream for issue 7's benchmark. Reads cx.play and
 * cx.purchase (Schema Registry wire format + Avro binary, decoded by hand: only the fields RFM needs),
 * keeps one RFM aggregate per customer in a cached persistent (RocksDB) key-value store through the
 * Processor API, and produces a segment change whenever a customer's RFM segment changes, with the
 * same score bands and segment rules as cxstream's defaults (rfm.r_days, rfm.f_min, rfm.m_min,
 * rfm.segments). Simpler than cxstream on purpose (favouring the peer): no trailing window expiry,
 * no event-time timers, no dedup, no triggers, campaigns or enriched output.
 *
 * Usage: Peer BOOTSTRAP APPLICATION_ID STATE_DIR [THREADS]
 */
package cxbench;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

public final class Peer {
    static final String STORE = "rfm";
    static final long DAY_MS = 86_400_000L;
    static final String[] SEGMENTS = {"Champions", "Cannot Lose Them", "At Risk", "Loyal", "Potential Loyalist",
            "New", "Promising", "Need Attention", "About To Sleep", "Hibernating", "Lost"};

    /* Minimal Avro binary reader over one record. */
    static final class Avro {
        final byte[] b;
        int p;
        Avro(byte[] b, int p) { this.b = b; this.p = p; }
        long lng() {
            long v = 0; int shift = 0, c;
            do { c = b[p++] & 0xff; v |= (long) (c & 0x7f) << shift; shift += 7; } while ((c & 0x80) != 0);
            return (v >>> 1) ^ -(v & 1);
        }
        void skipStr() { int n = (int) lng(); p += n; }
        String str() { int n = (int) lng(); String s = new String(b, p, n, StandardCharsets.UTF_8); p += n; return s; }
        void skipOptStr() { if (lng() != 0) skipStr(); }
    }

    static int rScore(long days) { return days <= 7 ? 5 : days <= 30 ? 4 : days <= 90 ? 3 : days <= 180 ? 2 : 1; }
    static int fScore(long f) { return f >= 100 ? 5 : f >= 40 ? 4 : f >= 12 ? 3 : f >= 4 ? 2 : 1; }
    static int mScore(long m) { return m >= 50000 ? 5 : m >= 20000 ? 4 : m >= 8000 ? 3 : m >= 2000 ? 2 : 1; }
    static int segment(int r, int f, int m) {
        if (r >= 4 && f >= 4 && m >= 4) return 0;
        if (r <= 2 && f >= 4 && m >= 4) return 1;
        if (r <= 2 && f >= 3) return 2;
        if (r >= 3 && f >= 4) return 3;
        if (r >= 4 && f >= 2 && f <= 3) return 4;
        if (r == 5 && f == 1) return 5;
        if (r == 4 && f == 1) return 6;
        if (r == 3 && f >= 2 && f <= 3) return 7;
        if (r == 3 && f == 1) return 8;
        if (r == 2 && f <= 2) return 9;
        return 10;
    }

    /* Aggregate value: lastDay i32, frequency i64, monetary i64, segment i8 (-1 none) = 21 bytes. */
    static final class Rfm implements Processor<String, byte[], String, byte[]> {
        private KeyValueStore<String, byte[]> store;
        private ProcessorContext<String, byte[]> ctx;
        private final boolean purchases;
        Rfm(boolean purchases) { this.purchases = purchases; }
        @Override public void init(ProcessorContext<String, byte[]> context) {
            ctx = context;
            store = context.getStateStore(STORE);
        }
        @Override public void process(Record<String, byte[]> rec) {
            byte[] v = rec.value();
            if (v == null || v.length < 5 || v[0] != 0) return;
            Avro a = new Avro(v, 5);
            String cid;
            long ts, amount = 0;
            boolean txn;
            try {
                a.skipStr();
                cid = a.str();
                ts = a.lng();
                if (purchases) {
                    a.skipOptStr();
                    a.lng();
                    amount = a.lng();
                    txn = amount >= 0;
                } else {
                    a.skipStr();
                    a.skipOptStr();
                    txn = a.lng() >= 120;
                }
            } catch (RuntimeException e) {
                return; /* malformed: a real app would send it to a DLQ */
            }
            int day = (int) Math.floorDiv(ts, DAY_MS);
            byte[] old = store.get(cid);
            int lastDay = Integer.MIN_VALUE; long freq = 0, mon = 0; int seg = -1;
            if (old != null) {
                ByteBuffer bb = ByteBuffer.wrap(old);
                lastDay = bb.getInt(); freq = bb.getLong(); mon = bb.getLong(); seg = bb.get();
            }
            if (txn) {
                freq++;
                mon += amount;
                if (day > lastDay) lastDay = day;
            }
            if (lastDay == Integer.MIN_VALUE) return; /* no transaction yet: no segment */
            int r = rScore(Math.max(0, day - lastDay)), f = fScore(freq), m = mScore(mon);
            int nseg = segment(r, f, m);
            ByteBuffer nb = ByteBuffer.allocate(21);
            nb.putInt(lastDay).putLong(freq).putLong(mon).put((byte) nseg);
            store.put(cid, nb.array());
            if (nseg != seg) {
                String out = cid + "," + ts + "," + (seg < 0 ? "" : SEGMENTS[seg]) + "," + SEGMENTS[nseg] + "," + r + ","
                        + f + "," + m + "," + freq + "," + mon;
                ctx.forward(new Record<>(cid, out.getBytes(StandardCharsets.UTF_8), ts));
            }
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: Peer BOOTSTRAP APPLICATION_ID STATE_DIR [THREADS]");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[1]);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(StreamsConfig.STATE_DIR_CONFIG, args[2]);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, args.length > 3 ? Integer.parseInt(args[3]) : 2);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 64L * 1024 * 1024);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Integer.getInteger("cxbench.commit.ms", 1000));
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), 5000);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.FETCH_MIN_BYTES_CONFIG), 65536);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        props.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 20);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.BATCH_SIZE_CONFIG), 262144);
        props.put(StreamsConfig.producerPrefix(ProducerConfig.COMPRESSION_TYPE_CONFIG), "lz4");

        StoreBuilder<KeyValueStore<String, byte[]>> sb = Stores.keyValueStoreBuilder(
                Stores.persistentKeyValueStore(STORE), Serdes.String(), Serdes.ByteArray()).withCachingEnabled();
        StreamsBuilder b = new StreamsBuilder();
        b.addStateStore(sb);
        Consumed<String, byte[]> in = Consumed.with(Serdes.String(), Serdes.ByteArray());
        Produced<String, byte[]> out = Produced.with(Serdes.String(), Serdes.ByteArray());
        String target = System.getProperty("cxbench.output", "cxbench.ks.segment_changes");
        b.stream("cx.play", in).process(() -> new Rfm(false), STORE).to(target, out);
        b.stream("cx.purchase", in).process(() -> new Rfm(true), STORE).to(target, out);

        KafkaStreams streams = new KafkaStreams(b.build(), props);
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> { streams.close(); done.countDown(); }));
        streams.start();
        done.await();
    }
}
