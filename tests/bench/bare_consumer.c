/*
 * bare_consumer.c — the ceiling of issue 7's end-to-end benchmark: a plain librdkafka consumer that
 * only polls. It assigns every partition of the given topics from the beginning (no group join, no
 * commits), counts records and bytes until every partition has reported EOF, and prints one line:
 * records, bytes, seconds (first poll to last EOF), records_per_s.
 *
 * Usage: bare_consumer BROKERS TOPIC...
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    char err[512];
    if (argc < 3) {
        fprintf(stderr, "usage: bare_consumer BROKERS TOPIC...\n");
        return 2;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "cxbench-bare", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", err, sizeof err) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "bare_consumer: %s\n", err);
        return 1;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "bare_consumer: %s\n", err);
        return 1;
    }
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(16);
    for (int i = 2; i < argc; i++) {
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, argv[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(rk, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1) {
            fprintf(stderr, "bare_consumer: no metadata for %s\n", argv[i]);
            return 1;
        }
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, argv[i], md->topics[0].partitions[p].id)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(t);
    }
    int n_parts = parts->cnt, eofs = 0;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    uint64_t records = 0, bytes = 0;
    double t0 = 0, t1 = 0;
    while (eofs < n_parts) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 1000);
        if (!m) continue;
        if (!t0) t0 = now_s();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            eofs++;
        } else if (m->err) {
            fprintf(stderr, "bare_consumer: %s\n", rd_kafka_message_errstr(m));
        } else {
            records++;
            bytes += m->len;
        }
        rd_kafka_message_destroy(m);
    }
    t1 = now_s();
    printf("records=%" PRIu64 " bytes=%" PRIu64 " seconds=%.3f records_per_s=%.0f\n", records, bytes, t1 - t0,
           (double)records / (t1 - t0));
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return 0;
}
