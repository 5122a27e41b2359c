/*
 * run.c — the Kafka driver (runner.h) and `cxstream run`.
 *
 * Per owned partition p there is one FIFO per input topic. The merge takes, among the four heads,
 * the one with the smallest event ts (ties: email_send, purchase, play, survey, then offset); an
 * empty FIFO whose fetch position is below the broker's high watermark is always waited for, one at
 * its end for up to input.max_idle_ms (DESIGN §2). Heads are decoded once, when they become heads;
 * a head that does not decode goes to the DLQ at once (it has no event time to order by).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "campaigns.h"
#include "changelog.h"
#include "cli.h"
#include "codec.h"
#include "http.h"
#include "owners.h"
#include "recq.h"
#include "registry.h"
#include "runner.h"

#define CONSUME_BATCH 1000
/* Events a partition processes per poll round before the consumer is drained again: librdkafka's
 * queue is kept short (its bound makes librdkafka 2.0.2 stop fetching for up to a second) while the
 * merge's own queues (recq.h, input.buffer_kb) hold the prefetch. */
#define ROUND_EVENTS 2048

typedef struct inq {
    cx_recq_t rq; /* records copied out of librdkafka (recq.h) */
    bool assigned, paused;
    bool merge_waits;      /* of input 0's: the merge of this partition waits for one of its inputs */
    int64_t position;      /* next offset expected from the broker */
    int64_t idle_since_ms; /* when the FIFO was found empty at the partition's end; 0 = not idle */
    int64_t start_offset;  /* offset assigned at the last rebalance (recovery without a stored one) */
    bool head_ready;       /* ev/code hold the decoded head */
    cx_dlq_code_t code;
    char detail[256];
    cx_event_t ev;
    cx_buf_t comment; /* owned copy of a survey head's comment */
} inq_t;

struct cx_runner {
    const cx_config_t *cfg;
    cx_runner_opts_t opts;
    rd_kafka_t *consumer, *producer, *campaigns;
    rd_kafka_queue_t *cq;
    cx_codec_t *codec;
    cx_registry_t *registry; /* NULL without schema.registry.url */
    cx_store_t *store;
    cx_pipeline_t *pl;
    const char *in_topics[CX_INPUTS]; /* by cx_event_type_t */
    int32_t n_parts;                  /* input partition count */
    inq_t *q;                         /* n_parts * CX_INPUTS */
    cx_buf_t enc;
    cx_campaign_t camp;
    cx_check_opts_t chk;
    cx_runner_stats_t st;
    int64_t last_commit_ms;
    int64_t progress_at_commit; /* progress() at the last commit cycle */
    bool fatal;
    char fatal_msg[768];
    bool more_work;        /* the last round left records the merge could process: the next poll must not wait */
    size_t buffered_bytes; /* held by the merge's queues (recq.h) */
    size_t buffer_bound;   /* bytes: above it the consumer is drained only when the merge cannot go on */
    int32_t behind_p;      /* the merge waits for records of partition behind_p of input behind_i not yet fetched */
    int behind_i;          /* -1: none */
    int64_t woken_ms;      /* the last wake_fetcher */
    /* HTTP readers (runner.h): mu is held while a poll processes, in callbacks and in close */
    pthread_mutex_t mu;
    bool mu_init;
    atomic_bool started;
    _Atomic int64_t heartbeat_ms;
    int64_t *lag; /* n_parts * CX_INPUTS consumer lags from statistics, -1 unknown; under mu */
    /* changelog, restore, transactions (changelog.h) */
    rd_kafka_t *restorer;           /* reads cx.changelog partitions: no group, read_committed, partition EOF */
    int64_t cl_acked[CX_PARTS_MAX]; /* highest acknowledged changelog offset per partition, -1 none */
    cx_buf_t clkey;
    bool eos;                      /* processing.guarantee=exactly_once */
    int64_t commit_ms;             /* cx_config_commit_interval_ms: commit.interval_ms or the guarantee's */
    bool in_txn;                   /* a transaction is open */
    bool txn_failed;               /* a produce or begin failed inside the transaction: abort at the flush */
    bool recover;                  /* the last flush failed: drop unflushed state, seek back */
    uint64_t delivery_errors_seen; /* delivery errors already handled by a recovery */
    cx_runner_restore_t rs;
    /* interactive queries (owners.h): partition → owner address from cx.partials "owner::<p>" */
    cx_owners_t *owners;
    int64_t owners_published_ms; /* CLOCK_MONOTONIC of the last publication, 0 none */
    int64_t owners_generation;   /* assignments seen by this process */
    bool owners_quiet;           /* revoking or closing: publish no owner records */
    atomic_bool http_serving;    /* cx_runner_http_serving: an HTTP server answers for this runner */
};

static inq_t *Q(cx_runner_t *r, int32_t p, int i) {
    return &r->q[p * CX_INPUTS + i];
}

static int input_of_topic(const cx_runner_t *r, const char *topic) {
    for (int i = 0; i < CX_INPUTS; i++)
        if (strcmp(r->in_topics[i], topic) == 0) return i;
    return -1;
}

/* ---------- outputs ---------- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    cx_runner_t *r = opaque;
    if (!m->err && m->partition >= 0 && m->partition < CX_PARTS_MAX &&
        strcmp(rd_kafka_topic_name(m->rkt), r->cfg->topic_changelog) == 0) {
        if (m->offset > r->cl_acked[m->partition]) r->cl_acked[m->partition] = m->offset;
    }
    if (m->err) {
        r->st.delivery_errors++;
        cx_log(CX_LOG_ERROR, "emit", "delivery failed topic=%s err=\"%s\"", rd_kafka_topic_name(m->rkt),
               rd_kafka_err2str(m->err));
    }
}

static const char *topic_of_kind(const cx_runner_t *r, cx_record_kind_t kind) {
    switch (kind) {
    case CX_REC_SEGMENT_CHANGE: return r->cfg->topic_segment_changes;
    case CX_REC_TRIGGER: return r->cfg->topic_disengagement_triggers;
    case CX_REC_RESPONSE: return r->cfg->topic_campaign_responses;
    case CX_REC_KPI: return r->cfg->topic_campaign_kpis;
    case CX_REC_ENRICHED: return r->cfg->topic_enriched;
    default: return NULL;
    }
}

static void txn_begin(cx_runner_t *r);
static void queue_clear(cx_runner_t *r, inq_t *q);

/* The producer's queue is full (CX_PRODUCER_QUEUE_MSGS): send what it holds now rather than after
 * linger.ms, and serve the deliveries that make room. A flush that times out is no error here: the
 * caller produces again and waits again while the broker is slow; records that fail are counted by
 * dr_cb and stop the commit. Serving deliveries as they come instead (rd_kafka_poll) was measured
 * (2026-12-07): a default end-to-end run waits here ~2 s of ~33 s either way, the producer's rate
 * bounds the commit's mirror, and a queue far smaller than a batch then waits linger.ms per round. */
static void wait_for_room(rd_kafka_t *producer) {
    (void)rd_kafka_flush(producer, 100);
}
static cx_err_t produce(cx_runner_t *r, const char *topic, const void *key, size_t klen, const void *val, size_t vlen,
                        rd_kafka_headers_t *hdrs) {
    if (r->eos && !r->in_txn && !r->txn_failed) txn_begin(r);
    if (r->txn_failed) { /* the transaction will be aborted and this cycle's input read again */
        if (hdrs) rd_kafka_headers_destroy(hdrs);
        return CX_OK;
    }
    for (int attempt = 0;; attempt++) {
        rd_kafka_resp_err_t err;
        if (hdrs)
            err = rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        else
            err = rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, klen),
                                    RD_KAFKA_V_VALUE((void *)val, vlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_END);
        if (!err) {
            r->st.produced++;
            return CX_OK;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) { /* back-pressure: let deliveries drain */
            wait_for_room(r->producer);
            continue;
        }
        if (hdrs) rd_kafka_headers_destroy(hdrs);
        cx_log(CX_LOG_ERROR, "emit", "produce failed topic=%s err=\"%s\"", topic, rd_kafka_err2str(err));
        if (r->eos) { /* recovered at the flush: abort, drop the state, read again */
            r->txn_failed = true;
            return CX_OK;
        }
        return CX_ERR_KAFKA;
    }
}

/* The cx.group header of changelog and partials records (NULL, i.e. none, if out of memory). */
static rd_kafka_headers_t *group_header(const cx_runner_t *r) {
    rd_kafka_headers_t *h = rd_kafka_headers_new(1);
    if (h) rd_kafka_header_add(h, CX_GROUP_HEADER, -1, r->cfg->group_id, -1);
    return h;
}

static cx_err_t sink_emit(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    cx_runner_t *r = opaque;
    if (kind == CX_REC_PARTIAL) { /* internal: raw JSON value (docs/topics.md, cx.partials) */
        const cx_partial_rec_t *pr = rec;
        return produce(r, r->cfg->topic_partials, key, strlen(key), pr->value, pr->len, group_header(r));
    }
    const char *topic = topic_of_kind(r, kind);
    if (!topic) return CX_OK;
    cx_buf_reset(&r->enc);
    cx_err_t rc = cx_codec_encode(r->codec, kind, rec, CX_FMT_WIRE, &r->enc);
    if (rc != CX_OK) return rc;
    rc = produce(r, topic, key, strlen(key), r->enc.data, r->enc.len, NULL);
    if (rc == CX_OK && (unsigned)kind < sizeof r->st.produced_kind / sizeof r->st.produced_kind[0])
        r->st.produced_kind[kind]++;
    return rc;
}

/* The record (key, payload) at topic/p/offset to the DLQ, with the reason in headers. */
static cx_err_t send_dlq(cx_runner_t *r, const char *topic, int32_t p, int64_t offset, const void *key, size_t key_len,
                         const void *payload, size_t len, cx_dlq_code_t code, const char *detail) {
    r->st.dlq[code]++;
    char part[16], off[24];
    snprintf(part, sizeof part, "%" PRId32, p);
    snprintf(off, sizeof off, "%" PRId64, offset);
    rd_kafka_headers_t *h = rd_kafka_headers_new(5);
    const char *name = cx_dlq_code_name(code);
    rd_kafka_header_add(h, "cx.error", -1, name, -1);
    rd_kafka_header_add(h, "cx.error.detail", -1, detail, -1);
    rd_kafka_header_add(h, "cx.source.topic", -1, topic, -1);
    rd_kafka_header_add(h, "cx.source.partition", -1, part, -1);
    rd_kafka_header_add(h, "cx.source.offset", -1, off, -1);
    cx_log(CX_LOG_DEBUG, "decode", "rejected topic=%s partition=%s offset=%s error=%s detail=\"%s\"", topic, part, off,
           name, detail);
    return produce(r, r->cfg->topic_dlq, key, key_len, payload, len, h);
}

/* ---------- changelog, transactions, recovery ---------- */

static cx_err_t producer_new(cx_runner_t *r, bool init_txn, char *errstr, size_t n);

static void txn_begin(cx_runner_t *r) {
    rd_kafka_error_t *e = rd_kafka_begin_transaction(r->producer);
    if (e) {
        cx_log(CX_LOG_ERROR, "txn", "begin_transaction failed err=\"%s\"", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        r->txn_failed = true;
        return;
    }
    r->in_txn = true;
}

static cx_err_t changelog_produce(void *opaque, uint16_t part, const void *key, size_t kl, const void *val, size_t vl) {
    cx_runner_t *r = opaque;
    for (;;) {
        /* cx.group names the application: a restore refuses another group's records (changelog.h) */
        rd_kafka_resp_err_t err = rd_kafka_producev(
            r->producer, RD_KAFKA_V_TOPIC(r->cfg->topic_changelog), RD_KAFKA_V_PARTITION((int32_t)part),
            RD_KAFKA_V_KEY(key, kl), RD_KAFKA_V_VALUE((void *)val, vl), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADER(CX_GROUP_HEADER, r->cfg->group_id, -1), RD_KAFKA_V_END);
        if (!err) {
            r->st.changelog_records++;
            return CX_OK;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            wait_for_room(r->producer);
            continue;
        }
        cx_log(CX_LOG_ERROR, "changelog", "produce failed partition=%u err=\"%s\"", part, rd_kafka_err2str(err));
        return CX_ERR_KAFKA;
    }
}

/* A producer whose idempotence state is fatally broken (or a fenced transactional one) cannot be
 * used again: replace it. */
static cx_err_t producer_replace(cx_runner_t *r, char *errstr, size_t n) {
    cx_log(CX_LOG_WARN, "emit", "replacing the producer (fatal producer error)");
    rd_kafka_purge(r->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(r->producer, 5000);
    rd_kafka_destroy(r->producer);
    r->producer = NULL;
    r->in_txn = false;
    return producer_new(r, r->eos, errstr, n);
}

/* exactly_once: offsets and commit of the open transaction; on failure abort (or replace a fenced
 * producer). `rc`: the result of producing the changelog. */
static cx_err_t txn_commit(cx_runner_t *r, cx_err_t rc, char *errstr, size_t n) {
    rd_kafka_error_t *e = NULL;
    if (rc == CX_OK && !r->txn_failed) {
        if (!r->in_txn) txn_begin(r);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->n_parts * CX_INPUTS);
        for (int32_t p = 0; p < r->n_parts; p++) {
            if (!cx_pipeline_owns(r->pl, (uint16_t)p)) continue;
            int64_t off[CX_INPUTS];
            cx_pipeline_offsets(r->pl, (uint16_t)p, off);
            for (int i = 0; i < CX_INPUTS; i++)
                if (off[i] >= 0) rd_kafka_topic_partition_list_add(l, r->in_topics[i], p)->offset = off[i];
        }
        if (!r->txn_failed && l->cnt) {
            rd_kafka_consumer_group_metadata_t *g = rd_kafka_consumer_group_metadata(r->consumer);
            e = rd_kafka_send_offsets_to_transaction(r->producer, l, g, 60000);
            rd_kafka_consumer_group_metadata_destroy(g);
        }
        rd_kafka_topic_partition_list_destroy(l);
        for (int attempt = 0; !e && !r->txn_failed; attempt++) {
            e = rd_kafka_commit_transaction(r->producer, 60000);
            if (!e) {
                r->in_txn = false;
                r->st.txn_commits++;
                return CX_OK;
            }
            if (!rd_kafka_error_is_retriable(e) || attempt >= 2) break;
            cx_log(CX_LOG_WARN, "txn", "commit_transaction retried err=\"%s\"", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            e = NULL;
        }
    }
    cx_seterr(errstr, n, "transaction not committed: %s",
              e             ? rd_kafka_error_string(e)
              : rc != CX_OK ? "changelog produce failed"
                            : "produce failed");
    cx_log(CX_LOG_WARN, "txn", "aborting err=\"%s\"", errstr);
    bool fatal = (e && rd_kafka_error_is_fatal(e)) || rd_kafka_fatal_error(r->producer, NULL, 0);
    if (e) rd_kafka_error_destroy(e);
    r->st.txn_aborts++;
    r->txn_failed = false;
    if (!fatal && r->in_txn) {
        rd_kafka_error_t *ae = rd_kafka_abort_transaction(r->producer, 60000);
        if (ae) {
            cx_log(CX_LOG_WARN, "txn", "abort_transaction failed err=\"%s\"", rd_kafka_error_string(ae));
            fatal = true;
            rd_kafka_error_destroy(ae);
        }
    }
    r->in_txn = false;
    char e2[256];
    if (fatal && producer_replace(r, e2, sizeof e2) != CX_OK) {
        cx_seterr(errstr, n, "transactional producer could not be replaced: %s", e2);
        return CX_ERR_FATAL;
    }
    return CX_ERR_KAFKA;
}

/* at_least_once: every output and changelog record produced so far acknowledged. */
static cx_err_t alos_ack(cx_runner_t *r, cx_err_t rc, char *errstr, size_t n) {
    rd_kafka_resp_err_t ferr = rd_kafka_flush(r->producer, 60000);
    uint64_t failed = r->st.delivery_errors - r->delivery_errors_seen;
    if (rc == CX_OK && !ferr && !failed) return CX_OK;
    cx_seterr(errstr, n, "outputs not acknowledged (%s, %" PRIu64 " delivery errors%s): not committing",
              ferr ? rd_kafka_err2str(ferr) : "flushed", failed, rc != CX_OK ? ", changelog produce failed" : "");
    char e2[256];
    if (rd_kafka_fatal_error(r->producer, NULL, 0) && producer_replace(r, e2, sizeof e2) != CX_OK) {
        cx_seterr(errstr, n, "producer could not be replaced: %s", e2);
        return CX_ERR_FATAL;
    }
    return CX_ERR_KAFKA;
}

/* The pipeline's flush hook (pipeline.h): the batch goes to the changelog, outputs and changelog
 * are acknowledged (or committed in the transaction with the offsets), then the checkpoints join
 * the batch that the pipeline writes to RocksDB. */
static cx_err_t flush_hook(void *opaque, cx_store_batch_t *b, char *errstr, size_t n) {
    cx_runner_t *r = opaque;
    cx_err_t rc = CX_OK;
    if (r->eos && !r->in_txn && !r->txn_failed) txn_begin(r);
    if (!r->txn_failed) rc = cx_changelog_mirror(b, &r->clkey, changelog_produce, r, NULL);
    rc = r->eos ? txn_commit(r, rc, errstr, n) : alos_ack(r, rc, errstr, n);
    if (rc != CX_OK) {
        r->recover = true;
        return rc;
    }
    for (int32_t p = 0; p < r->n_parts; p++)
        if (cx_pipeline_owns(r->pl, (uint16_t)p) && r->cl_acked[p] >= 0)
            cx_changelog_checkpoint_put(b, (uint16_t)p, r->cl_acked[p] + 1);
    return CX_OK;
}

/* After a failed flush: the cache held changes that are now neither written nor committed. Every
 * owned partition goes back to its stored state and offsets; outputs produced since then are
 * produced again with the same ids (at_least_once) or were aborted (exactly_once). */
static void recover_all(cx_runner_t *r, const char *why) {
    char err[256];
    cx_log(CX_LOG_WARN, "commit",
           "recovering: dropping unflushed state of every owned partition, seeking back to the stored offsets "
           "reason=\"%s\"",
           why);
    r->recover = false;
    r->delivery_errors_seen = r->st.delivery_errors;
    r->st.recoveries++;
    rd_kafka_topic_partition_list_t *seek = rd_kafka_topic_partition_list_new(r->n_parts * CX_INPUTS);
    rd_kafka_topic_partition_list_t *resume = rd_kafka_topic_partition_list_new(r->n_parts * CX_INPUTS);
    for (int32_t p = 0; p < r->n_parts; p++) {
        if (!cx_pipeline_owns(r->pl, (uint16_t)p)) continue;
        cx_pipeline_revoke(r->pl, (uint16_t)p);
        int64_t stored[CX_INPUTS];
        if (cx_pipeline_assign(r->pl, (uint16_t)p, stored, err, sizeof err) != CX_OK) {
            r->fatal = true;
            snprintf(r->fatal_msg, sizeof r->fatal_msg, "recovery: assign partition %d: %s", p, err);
            continue;
        }
        for (int i = 0; i < CX_INPUTS; i++) {
            inq_t *q = Q(r, p, i);
            if (!q->assigned) continue;
            if (q->paused) rd_kafka_topic_partition_list_add(resume, r->in_topics[i], p);
            queue_clear(r, q);
            q->position = stored[i] >= 0 ? stored[i] : q->start_offset;
            rd_kafka_topic_partition_list_add(seek, r->in_topics[i], p)->offset = q->position;
        }
    }
    if (resume->cnt) rd_kafka_resume_partitions(r->consumer, resume);
    if (seek->cnt) {
        rd_kafka_error_t *e = rd_kafka_seek_partitions(r->consumer, seek, 10000);
        if (e) {
            r->fatal = true;
            snprintf(r->fatal_msg, sizeof r->fatal_msg, "recovery: seek failed: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
        } else {
            for (int k = 0; k < seek->cnt; k++)
                if (seek->elems[k].err) {
                    r->fatal = true;
                    snprintf(r->fatal_msg, sizeof r->fatal_msg, "recovery: seek %s[%d]: %s", seek->elems[k].topic,
                             seek->elems[k].partition, rd_kafka_err2str(seek->elems[k].err));
                }
        }
    }
    rd_kafka_topic_partition_list_destroy(seek);
    rd_kafka_topic_partition_list_destroy(resume);
}

/* ---------- owner records (owners.h) ---------- */

/* Publishes "owner::<p>" for every owned input partition (nothing when HTTP is off). */
static cx_err_t publish_owners(cx_runner_t *r) {
    char addr[CX_OWNER_ADDR_MAX + 1], key[32];
    r->owners_published_ms = cx_mono_ms();
    if (!atomic_load(&r->http_serving) || !cx_owners_self_address(r->cfg, addr, sizeof addr)) return CX_OK;
    if (!cx_owners_addr_valid(addr, strlen(addr))) {
        cx_log(CX_LOG_WARN, "owners", "not advertised: address \"%s\" is not host:port", addr);
        return CX_OK;
    }
    cx_buf_t val = CX_BUF_INIT;
    cx_err_t rc = CX_OK;
    int64_t ts = cx_wall_ms();
    for (int32_t p = 0; p < r->n_parts && rc == CX_OK; p++) {
        if (!cx_pipeline_owns(r->pl, (uint16_t)p)) continue;
        rc = cx_owners_record(p, addr, r->owners_generation, ts, key, sizeof key, &val);
        if (rc == CX_OK) rc = produce(r, r->cfg->topic_partials, key, strlen(key), val.data, val.len, group_header(r));
    }
    cx_buf_free(&val);
    return rc;
}

/* ---------- commit protocol ---------- */

/* The sum of the owned partitions' next input offsets: it moves when a record is processed. */
static int64_t progress(const cx_runner_t *r) {
    int64_t sum = 0;
    for (int32_t p = 0; p < r->n_parts; p++) {
        if (!cx_pipeline_owns(r->pl, (uint16_t)p)) continue;
        int64_t off[CX_INPUTS];
        cx_pipeline_offsets(r->pl, (uint16_t)p, off);
        for (int i = 0; i < CX_INPUTS; i++)
            if (off[i] > 0) sum += off[i];
    }
    return sum;
}

/* Errors after which committing the same offsets again can succeed: the coordinator moving or
 * not answering in time. */
static bool commit_retriable(rd_kafka_resp_err_t err) {
    switch (err) {
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION: return true;
    default: return false;
    }
}

/* The last commit, at close: the group's offsets are what operations watch as lag, and nothing
 * commits after this one. A commit that failed on a moving or silent coordinator is made again, and
 * once one succeeds the group's offsets are read back: an earlier asynchronous commit that librdkafka
 * retried can land after it and move them back (seen in the mock tests with injected OffsetCommit
 * errors), so then it is made again too. Bounded by CX_FINAL_COMMIT_MS; what is left is logged here,
 * saying which step failed (the state holds its own offsets, so a restart resumes correctly either
 * way). */
#define CX_FINAL_COMMIT_MS 10000
static void commit_final(cx_runner_t *r, const rd_kafka_topic_partition_list_t *l) {
    int64_t deadline = cx_mono_ms() + CX_FINAL_COMMIT_MS;
    rd_kafka_resp_err_t err;
    const char *step;
    for (int attempt = 0;; attempt++) {
        step = "the final offset commit failed";
        err = rd_kafka_commit(r->consumer, l, 0);
        if (!err) {
            rd_kafka_topic_partition_list_t *back = rd_kafka_topic_partition_list_copy(l);
            int64_t left = deadline - cx_mono_ms();
            step = "reading back the final offsets failed (the commit itself succeeded)";
            err = rd_kafka_committed(r->consumer, back, (int)(left > 1000 ? left : 1000));
            for (int i = 0; i < back->cnt && !err; i++)
                if (back->elems[i].err || back->elems[i].offset < l->elems[i].offset)
                    err = back->elems[i].err ? back->elems[i].err : RD_KAFKA_RESP_ERR__OUTDATED;
            rd_kafka_topic_partition_list_destroy(back);
            if (!err) return;
            if (err == RD_KAFKA_RESP_ERR__OUTDATED) {
                step = "the final offsets read back behind what was committed (an earlier commit landed after it)";
                cx_log(CX_LOG_WARN, "commit", "%s; committing again", step);
            }
        }
        if ((err != RD_KAFKA_RESP_ERR__OUTDATED && !commit_retriable(err)) || cx_mono_ms() >= deadline) break;
        /* not rd_kafka_poll: the consumer's queue is the main one (poll_set_consumer) and it would
         * take records */
        struct timespec ts = {0, (attempt < 5 ? 100 : 500) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (err != RD_KAFKA_RESP_ERR__NO_OFFSET)
        cx_log(CX_LOG_WARN, "commit",
               "%s err=\"%s\" after %d ms (state holds the offsets; the group's lag stays until the next start)", step,
               rd_kafka_err2str(err), CX_FINAL_COMMIT_MS - (int)(deadline - cx_mono_ms()));
}

/* flush (changelog + acknowledgements or transaction, then RocksDB, written behind: the next
 * events are processed while it lands, and a failure surfaces at the next store access or flush)
 * → offsets (at_least_once; the state's own offsets, in the acknowledged changelog, are what a
 * restart resumes from, so the group's may run ahead of a write still in flight).
 * A failed delivery is recovered from (recover_all) and returns CX_OK; a record the producer refuses
 * (CX_ERR_KAFKA) or a RocksDB failure (CX_ERR_IO) is returned: the caller stops without committing. */
typedef enum {
    COMMIT_ASYNC, /* the interval's cycles: the group's offsets asynchronously */
    COMMIT_SYNC,  /* a revoke: the state in RocksDB and the offsets committed before returning */
    COMMIT_FINAL, /* close: as COMMIT_SYNC, and the offsets made to land (commit_final) */
} commit_mode_t;

static cx_err_t commit_cycle(cx_runner_t *r, commit_mode_t mode, char *errstr, size_t n) {
    bool sync = mode != COMMIT_ASYNC;
    int64_t t0 = cx_mono_ms();
    if (r->recover) recover_all(r, "an earlier flush failed");
    if (r->n_parts > 0 && !r->owners_quiet &&
        (!r->owners_published_ms || t0 - r->owners_published_ms >= CX_OWNERS_REPUBLISH_MS) &&
        publish_owners(r) != CX_OK)
        cx_log(CX_LOG_WARN, "owners", "owner records not published (retried next cycle)");
    cx_err_t rc = cx_pipeline_flush(r->pl, -1, errstr, n);
    /* a sync cycle (revoke, close) returns with the state in RocksDB */
    if (rc == CX_OK && sync) rc = cx_pipeline_wait(r->pl, errstr, n);
    if (rc != CX_OK) {
        if (!r->recover || rc == CX_ERR_FATAL) {
            /* CX_ERR_KAFKA: the producer refused a changelog or partials record (nothing was written) */
            cx_log(CX_LOG_ERROR, "commit", "%s failed, stopping without committing err=\"%s\"",
                   rc == CX_ERR_KAFKA ? "producing the flush's records" : "state write", errstr);
            return rc == CX_ERR_FATAL || rc == CX_ERR_KAFKA ? rc : CX_ERR_IO;
        }
        recover_all(r, errstr);
        r->last_commit_ms = cx_mono_ms();
        return r->fatal ? CX_ERR_FATAL : CX_OK;
    }
    /* offsets to the group (exactly_once: already inside the transaction) */
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(r->n_parts * CX_INPUTS);
    for (int32_t p = 0; p < r->n_parts && !r->eos; p++) {
        if (!cx_pipeline_owns(r->pl, (uint16_t)p)) continue;
        int64_t off[CX_INPUTS];
        cx_pipeline_offsets(r->pl, (uint16_t)p, off);
        for (int i = 0; i < CX_INPUTS; i++)
            if (off[i] >= 0) rd_kafka_topic_partition_list_add(l, r->in_topics[i], p)->offset = off[i];
    }
    if (l->cnt) {
        rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
        if (mode == COMMIT_FINAL)
            commit_final(r, l); /* logs what it could not do */
        else
            err = rd_kafka_commit(r->consumer, l, !sync);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
            cx_log(CX_LOG_WARN, "commit",
                   "offset commit failed err=\"%s\" (state holds the offsets; retried next cycle)",
                   rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(l);
    r->st.commits++;
    r->progress_at_commit = progress(r);
    r->last_commit_ms = cx_mono_ms();
    r->st.last_commit_s = (double)(r->last_commit_ms - t0) / 1000.0;
    cx_histogram_observe(&r->st.commit_seconds, r->st.last_commit_s);
    return CX_OK;
}

/* ---------- rebalance ---------- */

static void queue_clear(cx_runner_t *r, inq_t *q) {
    size_t before = q->rq.bytes;
    cx_recq_clear(&q->rq);
    r->buffered_bytes -= before - q->rq.bytes;
    q->head_ready = false;
    q->idle_since_ms = 0;
    q->paused = false;
}

static void restore_progress(void *opaque, const cx_restore_progress_t *pr) {
    cx_runner_t *r = opaque;
    cx_runner_lock(r);
    r->rs.current = *pr;
    cx_runner_unlock(r);
    if (pr->position < pr->end)
        cx_log(CX_LOG_INFO, "restore",
               "progress partition=%u position=%" PRId64 " end=%" PRId64 " records=%" PRIu64 " records_per_s=%.0f",
               pr->part, pr->position, pr->end, pr->records, pr->seconds > 0 ? (double)pr->records / pr->seconds : 0.0);
}

/* Reads changelog partition p from `from` into the store. Called with the runner lock held; the
 * lock is released while the changelog is read (only the store and the restore consumer are
 * touched, and p is not owned by the pipeline yet), so /readyz can report the progress. */
static cx_err_t restore_partition(cx_runner_t *r, int32_t p, int64_t from, char *err, size_t n) {
    cx_restore_progress_t res;
    r->rs.active = true;
    r->rs.current = (cx_restore_progress_t){.part = (uint16_t)p, .from = from, .end = -1, .position = from};
    cx_runner_unlock(r);
    cx_err_t rc = cx_changelog_restore(r->restorer, r->cfg->topic_changelog, r->cfg->group_id, r->store, (uint16_t)p,
                                       from, restore_progress, r, &res, err, n);
    cx_runner_lock(r);
    r->rs.active = false;
    if (rc != CX_OK) return rc;
    r->cl_acked[p] = res.position - 1;
    r->rs.partitions_restored++;
    r->rs.records_total += res.records;
    r->rs.seconds_total += res.seconds;
    cx_log(CX_LOG_INFO, "restore",
           "restored partition=%d mode=%s from=%" PRId64 " to=%" PRId64 " records=%" PRIu64 " seconds=%.3f"
           " records_per_s=%.0f",
           p, from >= 0 ? "tail" : "full", res.from, res.position, res.records, res.seconds,
           res.seconds > 0 ? (double)res.records / res.seconds : 0.0);
    return CX_OK;
}

/* exactly_once: do the stored next offsets of p equal the group's committed ones (parts holds
 * what rd_kafka_committed returned)? No offset on either side counts as equal. */
static bool offsets_match(const cx_runner_t *r, int32_t p, const rd_kafka_topic_partition_list_t *parts,
                          const int64_t stored[CX_INPUTS]) {
    for (int i = 0; i < CX_INPUTS; i++) {
        const rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(parts, r->in_topics[i], p);
        int64_t committed = tp ? tp->offset : -1;
        if (committed < 0 && stored[i] < 0) continue;
        if (committed != stored[i]) return false;
    }
    return true;
}

/* Restores p from the changelog (the tail after the local checkpoint, or all of it) and takes it
 * into the pipeline. exactly_once: local state counts only if its offsets equal the committed ones;
 * otherwise the partition is dropped and rebuilt from the whole changelog. */
static cx_err_t assign_partition(cx_runner_t *r, int32_t p, const rd_kafka_topic_partition_list_t *parts,
                                 int64_t stored[CX_INPUTS], char *err, size_t n) {
    int64_t ck = -1;
    cx_err_t rc = cx_changelog_checkpoint_get(r->store, (uint16_t)p, &ck, err, n);
    for (int attempt = 0; rc == CX_OK; attempt++) {
        if ((rc = restore_partition(r, p, ck >= 0 ? ck : RD_KAFKA_OFFSET_BEGINNING, err, n)) != CX_OK) break;
        if ((rc = cx_pipeline_assign(r->pl, (uint16_t)p, stored, err, n)) != CX_OK) break;
        if (!r->eos || offsets_match(r, p, parts, stored)) break;
        if (attempt > 0 || ck < 0) {
            cx_log(CX_LOG_WARN, "restore",
                   "partition=%d state rebuilt from the changelog does not match the group's committed offsets; "
                   "resuming from the state's offsets",
                   p);
            break;
        }
        cx_log(CX_LOG_INFO, "restore",
               "partition=%d local state does not match the group's committed offsets: rebuilding from the changelog",
               p);
        cx_pipeline_revoke(r->pl, (uint16_t)p);
        if ((rc = cx_store_drop_partition(r->store, (uint16_t)p, err, n)) != CX_OK) break;
        ck = -1;
    }
    r->rs.pending--;
    return rc;
}

static void on_assign(cx_runner_t *r, rd_kafka_topic_partition_list_t *parts) {
    char err[256];
    bool seen[CX_PARTS_MAX] = {false};
    /* committed offsets, for partitions without local state (exactly_once: to validate it; with
     * isolation.level=read_committed this waits for pending transactional offset commits) */
    rd_kafka_committed(r->consumer, parts, 10000);
    r->rs.pending = 0;
    for (int k = 0; k < parts->cnt; k++) {
        int32_t p = parts->elems[k].partition;
        if (p >= 0 && p < r->n_parts && !seen[p] && input_of_topic(r, parts->elems[k].topic) >= 0) {
            seen[p] = true;
            r->rs.pending++;
        }
    }
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < parts->cnt; k++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[k];
        int32_t p = tp->partition;
        int i = input_of_topic(r, tp->topic);
        if (i < 0 || p >= r->n_parts) continue;
        if (!seen[p]) {
            seen[p] = true;
            int64_t stored[CX_INPUTS];
            if (r->fatal || assign_partition(r, p, parts, stored, err, sizeof err) != CX_OK) {
                if (r->fatal) continue;
                r->fatal = true;
                snprintf(r->fatal_msg, sizeof r->fatal_msg, "assign partition %d: %s", p, err);
                continue;
            }
            for (int j = 0; j < CX_INPUTS; j++)
                Q(r, p, j)->position = stored[j];
        }
        inq_t *q = Q(r, p, i);
        queue_clear(r, q);
        q->assigned = true;
        if (q->position >= 0)
            tp->offset = q->position; /* local state decides: never count twice */
        else if (tp->offset < 0) {
            int64_t lo = 0, hi = 0;
            if (rd_kafka_query_watermark_offsets(r->consumer, tp->topic, p, &lo, &hi, 10000) == 0)
                tp->offset = lo;
            else
                tp->offset = RD_KAFKA_OFFSET_BEGINNING;
        }
        q->position = tp->offset;
        q->start_offset = tp->offset;
        cx_log(CX_LOG_INFO, "consumer", "assigned topic=%s partition=%d offset=%" PRId64, tp->topic, p, tp->offset);
    }
    rd_kafka_assign(r->consumer, parts);
    r->st.rebalances++;
    r->owners_generation++;
    r->owners_quiet = false;
    if (r->eos) /* no transaction from a rebalance callback: the next commit cycle publishes */
        r->owners_published_ms = 0;
    else if (!r->fatal && publish_owners(r) != CX_OK)
        cx_log(CX_LOG_WARN, "owners", "owner records not published (retried at the next commit cycle)");
}

static void on_revoke(cx_runner_t *r, rd_kafka_topic_partition_list_t *parts) {
    char err[256];
    r->owners_quiet = true; /* the new owner publishes */
    if (!r->fatal && commit_cycle(r, COMMIT_SYNC, err, sizeof err) != CX_OK) {
        r->fatal = true;
        snprintf(r->fatal_msg, sizeof r->fatal_msg, "commit on revoke: %s", err);
    }
    /* librdkafka keeps an application pause across unassign and assign: a partition paused now
     * would never be fetched again when it comes back (its FIFO is cleared below) */
    rd_kafka_topic_partition_list_t *resume = rd_kafka_topic_partition_list_new(parts->cnt);
    for (int k = 0; k < parts->cnt; k++) {
        int32_t p = parts->elems[k].partition;
        int i = input_of_topic(r, parts->elems[k].topic);
        if (i < 0 || p >= r->n_parts) continue;
        if (Q(r, p, i)->paused) rd_kafka_topic_partition_list_add(resume, parts->elems[k].topic, p);
        queue_clear(r, Q(r, p, i));
        Q(r, p, i)->assigned = false;
        cx_pipeline_revoke(r->pl, (uint16_t)p);
    }
    if (resume->cnt) rd_kafka_resume_partitions(r->consumer, resume);
    rd_kafka_topic_partition_list_destroy(resume);
    rd_kafka_assign(r->consumer, NULL);
    r->st.rebalances++;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *parts,
                         void *opaque) {
    (void)rk;
    cx_runner_t *r = opaque;
    cx_runner_lock(r); /* served inside consume (outside the poll's lock) or close */
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(r, parts);
    else
        on_revoke(r, parts);
    cx_runner_unlock(r);
}

static void stats_lag_one(void *opaque, const char *topic, int32_t p, int64_t lag) {
    cx_runner_t *r = opaque;
    int i = input_of_topic(r, topic);
    if (i >= 0 && p >= 0 && p < r->n_parts) r->lag[p * CX_INPUTS + i] = lag;
}

/* librdkafka statistics (statistics.interval.ms): keeps the per-partition consumer lag for /metrics. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque) {
    (void)rk;
    cx_runner_t *r = opaque;
    if (r->n_parts <= 0) return 0;
    cx_runner_lock(r);
    if (!r->lag && (r->lag = malloc((size_t)r->n_parts * CX_INPUTS * sizeof *r->lag)))
        for (int32_t k = 0; k < r->n_parts * CX_INPUTS; k++)
            r->lag[k] = -1;
    if (r->lag && cx_metrics_parse_lag(json, json_len, stats_lag_one, r) != CX_OK)
        cx_log(CX_LOG_WARN, "metrics", "statistics JSON did not parse bytes=%zu", json_len);
    cx_runner_unlock(r);
    return 0; /* librdkafka frees json */
}

/* ---------- set-up ---------- */

static cx_err_t conf_apply(rd_kafka_conf_t *conf, const cx_config_t *cfg, const char *const *extra, char *errstr,
                           size_t n) {
    const char *bs = cx_config_bootstrap_servers(cfg);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bs, errstr, n) != RD_KAFKA_CONF_OK) return CX_ERR_CONFIG;
    for (size_t i = 0; extra && extra[i]; i += 2)
        if (rd_kafka_conf_set(conf, extra[i], extra[i + 1], errstr, n) != RD_KAFKA_CONF_OK) return CX_ERR_CONFIG;
    for (size_t i = 0; i < cfg->n_kafka; i++)
        if (rd_kafka_conf_set(conf, cfg->kafka[i].key, cfg->kafka[i].value, errstr, n) != RD_KAFKA_CONF_OK) {
            char tmp[256];
            snprintf(tmp, sizeof tmp, "kafka.%s: %s", cfg->kafka[i].key, errstr);
            cx_seterr(errstr, n, "%s", tmp);
            return CX_ERR_CONFIG;
        }
    return CX_OK;
}

/* Input prefetch of an instance, split among its pipeline threads: the merge's queues (recq.h) take
 * records out of librdkafka at once up to input.buffer_kb, and librdkafka queues up to CX_LIB_QUEUE_KB
 * (payload bytes; its own memory is ~13 times that for 54-byte records) */
#define CX_LIB_QUEUE_KB 4096

/* Records the producer holds before produce waits for acknowledgements (librdkafka's default is
 * 100,000). A commit mirrors every dirty profile to the changelog at once, and each queued record
 * costs its copy plus ~400 bytes of librdkafka's own (message, cx.group header): at 100,000 that was
 * ~50-100 MB of peak RSS per commit. Waiting for room (QUEUE_FULL: poll, produce again) does not
 * slow the commit on a healthy broker, since the records go out in batches of this size anyway. */
#define CX_PRODUCER_QUEUE_MSGS "10000"

/* The output producer: idempotent, murmur2 like the Java client so outputs co-partition with the
 * inputs. exactly_once: transactional, transactional.id = <group.id>-<group.instance.id> when static
 * membership is configured, else <group.id>-<hostname>-<hash of state.dir>: stable across restarts
 * of one instance (so its open transaction is aborted at once by init_transactions) and distinct
 * between instances (each has its own state.dir). init_txn: call init_transactions now. */
static cx_err_t producer_new(cx_runner_t *r, bool init_txn, char *errstr, size_t n) {
    const cx_config_t *cfg = r->cfg;
    char txid[512] = "";
    if (r->eos) {
        const char *inst = cx_config_kafka_value(cfg, "group.instance.id");
        if (inst && *inst) {
            snprintf(txid, sizeof txid, "%s-%s", cfg->group_id, inst);
        } else {
            char host[256] = "host";
            gethostname(host, sizeof host - 1);
            const char *dir = cfg->state_dir ? cfg->state_dir : "";
            snprintf(txid, sizeof txid, "%s-%s-%016" PRIx64, cfg->group_id, host, cx_hash64(dir, strlen(dir)));
        }
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *pextra[] = {"partitioner",
                            "murmur2_random",
                            "enable.idempotence",
                            "true",
                            "acks",
                            "all",
                            "linger.ms",
                            "20",
                            "compression.type",
                            "lz4",
                            "queue.buffering.max.messages",
                            CX_PRODUCER_QUEUE_MSGS,
                            r->eos ? "transactional.id" : NULL,
                            txid,
                            "transaction.timeout.ms",
                            "30000",
                            NULL};
    if (conf_apply(conf, cfg, pextra, errstr, n) != CX_OK) {
        rd_kafka_conf_destroy(conf);
        return CX_ERR_CONFIG;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, r);
    if (!(r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, n))) {
        rd_kafka_conf_destroy(conf);
        return CX_ERR_CONFIG;
    }
    /* conf is owned by the producer now */
    r->in_txn = r->txn_failed = false;
    if (r->eos && init_txn) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(r->producer, 60000);
        if (e) {
            cx_seterr(errstr, n, "init_transactions (transactional.id=%s): %s", txid, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            return CX_ERR_KAFKA;
        }
        cx_log(CX_LOG_INFO, "txn", "transactions initialised transactional.id=%s", txid);
    }
    return CX_OK;
}

cx_runner_t *cx_runner_new(const cx_config_t *cfg, const cx_runner_opts_t *o, char *errstr, size_t n) {
    cx_runner_t *r = calloc(1, sizeof *r);
    rd_kafka_conf_t *conf = NULL;
    if (!r) return NULL;
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    r->mu_init = pthread_mutex_init(&r->mu, &ma) == 0;
    pthread_mutexattr_destroy(&ma);
    if (!r->mu_init) {
        free(r);
        return NULL;
    }
    r->cfg = cfg;
    if (o) r->opts = *o;
    r->behind_i = -1;
    r->in_topics[CX_EV_EMAIL_SEND] = cfg->topic_email_send;
    r->in_topics[CX_EV_PURCHASE] = cfg->topic_purchase;
    r->in_topics[CX_EV_PLAY] = cfg->topic_play;
    r->in_topics[CX_EV_SURVEY] = cfg->topic_survey;
    r->chk = (cx_check_opts_t){cfg->input_min_ts_ms, cfg->input_max_future_ms, 1, (const char *const *)cfg->currencies,
                               cfg->n_currencies};
    const char *assignor = cx_config_kafka_value(cfg, "partition.assignment.strategy");
    if (assignor && strcmp(assignor, "range") != 0) {
        cx_seterr(errstr, n,
                  "kafka.partition.assignment.strategy=%s: only 'range' co-partitions the input topics (DESIGN §2)",
                  assignor);
        goto fail;
    }
    if (!(r->codec = cx_codec_new(errstr, n))) goto fail;
    if (cfg->schema_registry_url && *cfg->schema_registry_url &&
        !(r->registry = cx_registry_new(cfg->schema_registry_url, 0, r->codec, errstr, n)))
        goto fail;
    cx_store_opts_t so = {.dir = cfg->state_dir,
                          .block_cache_mb = (size_t)cfg->state_block_cache_mb,
                          .write_buffer_mb = (size_t)cfg->state_write_buffer_mb};
    if (!(r->store = cx_store_open(&so, errstr, n))) goto fail;
    cx_sink_t sink = {r, sink_emit};
    if (!(r->pl = cx_pipeline_new(cfg, r->store, &sink, errstr, n))) goto fail;
    if (!(r->owners = cx_owners_new())) {
        cx_seterr(errstr, n, "out of memory");
        goto fail;
    }

    r->eos = cfg->guarantee == CX_GUARANTEE_EXACTLY_ONCE;
    r->commit_ms = cx_config_commit_interval_ms(cfg);
    for (int i = 0; i < CX_PARTS_MAX; i++)
        r->cl_acked[i] = -1;
    cx_pipeline_set_flush_hook(r->pl, flush_hook, r);
    /* the hook makes each flush durable in Kafka before the pipeline writes it: RocksDB applies it
     * behind the processing of the next events (a crash before it lands restores a longer tail) */
    cx_pipeline_set_write_behind(r->pl, true);
    if (producer_new(r, false, errstr, n) != CX_OK) goto fail;

    /* changelog reader for restores: outside the group, committed data only, end-of-partition events */
    conf = rd_kafka_conf_new();
    const char *rextra[] = {"enable.auto.commit",
                            "false",
                            "group.id",
                            "cxstream-restore-unused",
                            "enable.partition.eof",
                            "true",
                            "isolation.level",
                            "read_committed",
                            "auto.offset.reset",
                            "earliest",
                            "fetch.wait.max.ms",
                            "10",
                            NULL};
    if (conf_apply(conf, cfg, rextra, errstr, n) != CX_OK) goto fail;
    if (!(r->restorer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, n))) goto fail;
    conf = NULL;

    char stats[24], prefetch_kb[24];
    snprintf(stats, sizeof stats, "%" PRId64, cfg->statistics_interval_ms);
    int threads = cfg->processing_threads > 1 ? cfg->processing_threads : 1;
    r->buffer_bound = (size_t)cfg->input_buffer_kb * 1024 / (size_t)threads;
    snprintf(prefetch_kb, sizeof prefetch_kb, "%d", CX_LIB_QUEUE_KB / threads);
    conf = rd_kafka_conf_new();
    /* Prefetch. librdkafka 2.0.2 compares queued.min.messages and queued.max.messages.kbytes with
     * the whole consumer queue (every partition's fetch queue is forwarded to it) and, once either is
     * exceeded, fetches again only when its broker thread wakes (up to a second later; wake_fetcher).
     * Records move on to the merge's queues at once (enqueue), so this queue is short and its bound
     * small; the count is set high so the bytes decide (kafka.* settings override both).
     * processing.threads splits it: each thread's consumer fetches its share of the partitions.
     * The bytes are payload: with ~54-byte records the queue's own memory is ~13 times that. */
    const char *cextra[] = {"queued.min.messages",
                            "1000000",
                            "queued.max.messages.kbytes",
                            prefetch_kb,
                            "group.id",
                            cfg->group_id,
                            "partition.assignment.strategy",
                            "range",
                            "enable.auto.commit",
                            "false",
                            "enable.auto.offset.store",
                            "false",
                            "auto.offset.reset",
                            "earliest",
                            "statistics.interval.ms",
                            stats,
                            NULL};
    if (conf_apply(conf, cfg, cextra, errstr, n) != CX_OK) goto fail;
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_stats_cb(conf, stats_cb);
    rd_kafka_conf_set_opaque(conf, r);
    if (!(r->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, n))) goto fail;
    conf = NULL;
    rd_kafka_poll_set_consumer(r->consumer);
    r->cq = rd_kafka_queue_get_consumer(r->consumer);

    /* global table reader: no group, assigned from the beginning */
    conf = rd_kafka_conf_new();
    const char *gextra[] = {"enable.auto.commit", "false", "group.id", "cxstream-global-unused", NULL};
    if (conf_apply(conf, cfg, gextra, errstr, n) != CX_OK) goto fail;
    if (!(r->campaigns = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, n))) goto fail;
    conf = NULL;
    return r;
fail:
    if (conf) rd_kafka_conf_destroy(conf);
    cx_runner_destroy(r);
    return NULL;
}

void cx_runner_destroy(cx_runner_t *r) {
    if (!r) return;
    if (r->q) {
        for (int32_t k = 0; k < r->n_parts * CX_INPUTS; k++) {
            cx_recq_free(&r->q[k].rq);
            cx_buf_free(&r->q[k].comment);
        }
        free(r->q);
    }
    if (r->cq) rd_kafka_queue_destroy(r->cq);
    if (r->consumer) rd_kafka_destroy(r->consumer);
    if (r->campaigns) rd_kafka_destroy(r->campaigns);
    if (r->restorer) {
        rd_kafka_consumer_close(r->restorer);
        rd_kafka_destroy(r->restorer);
    }
    cx_buf_free(&r->clkey);
    if (r->producer) {
        rd_kafka_flush(r->producer, 10000);
        rd_kafka_destroy(r->producer);
    }
    cx_pipeline_destroy(r->pl);
    cx_owners_destroy(r->owners);
    cx_store_close(r->store);
    cx_registry_destroy(r->registry);
    cx_codec_destroy(r->codec);
    cx_campaign_clear(&r->camp);
    cx_buf_free(&r->enc);
    free(r->lag);
    if (r->mu_init) pthread_mutex_destroy(&r->mu);
    free(r);
}

static int32_t topic_partitions(const rd_kafka_metadata_t *md, const char *topic) {
    for (int i = 0; i < md->topic_cnt; i++)
        if (strcmp(md->topics[i].topic, topic) == 0) return md->topics[i].err ? -1 : md->topics[i].partition_cnt;
    return -1;
}

static cx_err_t create_topics(cx_runner_t *r, const rd_kafka_metadata_t *md, char *errstr, size_t n) {
    cx_topic_use_t want[CX_TOPICS_MAX];
    size_t n_want = cx_config_topics(r->cfg, want);
    rd_kafka_NewTopic_t *nt[CX_TOPICS_MAX];
    int cnt = 0;
    char e2[256];
    for (size_t i = 0; i < n_want; i++) {
        if (want[i].input || topic_partitions(md, want[i].name) > 0) continue; /* inputs are the producers' */
        int parts = want[i].global ? 1 : r->n_parts;
        nt[cnt] = rd_kafka_NewTopic_new(want[i].name, parts, -1, e2, sizeof e2);
        if (!nt[cnt]) continue;
        if (want[i].compact) rd_kafka_NewTopic_set_config(nt[cnt], "cleanup.policy", "compact");
        cnt++;
        cx_log(CX_LOG_INFO, "admin", "creating topic=%s partitions=%d", want[i].name, parts);
    }
    if (!cnt) return CX_OK;
    rd_kafka_queue_t *rq = rd_kafka_queue_new(r->producer);
    rd_kafka_CreateTopics(r->producer, nt, (size_t)cnt, NULL, rq);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(rq, 30000);
    cx_err_t rc = CX_OK;
    if (!ev) {
        cx_seterr(errstr, n, "creating topics timed out");
        rc = CX_ERR_KAFKA;
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t k = 0;
        const rd_kafka_topic_result_t **tr = res ? rd_kafka_CreateTopics_result_topics(res, &k) : NULL;
        for (size_t i = 0; i < k; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[i]);
            if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
                cx_seterr(errstr, n, "creating topic %s: %s", rd_kafka_topic_result_name(tr[i]),
                          rd_kafka_topic_result_error_string(tr[i]));
                rc = CX_ERR_KAFKA;
            }
        }
        rd_kafka_event_destroy(ev);
    }
    rd_kafka_NewTopic_destroy_array(nt, (size_t)cnt);
    rd_kafka_queue_destroy(rq);
    return rc;
}

static cx_err_t apply_campaign(cx_runner_t *r, const rd_kafka_message_t *m) {
    char detail[256] = "", id[CX_ID_MAX + 1];
    size_t kl = m->key_len < CX_ID_MAX ? m->key_len : CX_ID_MAX;
    memcpy(id, m->key ? m->key : "", m->key ? kl : 0);
    id[m->key ? kl : 0] = 0;
    if (!m->payload) { /* tombstone */
        r->st.campaigns++;
        return cx_pipeline_campaign(r->pl, id, NULL, NULL, 0);
    }
    cx_dlq_code_t code =
        cx_registry_decode_campaign(r->registry, r->codec, m->payload, m->len, &r->camp, detail, sizeof detail);
    if (code != CX_DLQ_NONE)
        return send_dlq(r, rd_kafka_topic_name(m->rkt), m->partition, m->offset, m->key, m->key_len, m->payload, m->len,
                        code, detail);
    r->st.campaigns++;
    return cx_pipeline_campaign(r->pl, r->camp.campaign_id, &r->camp, NULL, 0);
}

/* A cx.partials record: other instances' campaign partials and watermarks (ours are ignored). */
static cx_err_t apply_partial(cx_runner_t *r, const rd_kafka_message_t *m) {
    if (!m->key) return CX_OK;
    char other[256];
    if (cx_changelog_foreign_group(m, r->cfg->group_id, other, sizeof other)) {
        /* another application shares this topic: its partials are not ours to merge */
        if (!r->st.partials_foreign++)
            cx_log(CX_LOG_WARN, "partials",
                   "skipped=foreign_group topic=%s group=%s (this is %s; give each application its own "
                   "topic.partials and topic.changelog)",
                   r->cfg->topic_partials, other, r->cfg->group_id);
        return CX_OK;
    }
    if (cx_owners_apply(r->owners, m->key, m->key_len, m->payload, m->len) == CX_ERR_INVALID)
        cx_log(CX_LOG_WARN, "partials", "skipped=malformed owner record offset=%" PRId64, m->offset);
    cx_err_t rc = cx_campaigns_apply_partial(cx_pipeline_campaigns(r->pl), m->key, m->key_len, m->payload, m->len);
    if (rc == CX_ERR_INVALID) cx_log(CX_LOG_WARN, "partials", "skipped=malformed offset=%" PRId64, m->offset);
    return rc == CX_ERR_NOMEM ? rc : CX_OK;
}

static bool stopping(const cx_runner_t *r) {
    return r->opts.stop && *r->opts.stop;
}

/* Reads what the global consumer has; with `to_end`, until the high watermark at call time. */
static cx_err_t poll_campaigns(cx_runner_t *r, bool to_end, char *errstr, size_t n) {
    int64_t lo = 0, hi = 0, pos = 0;
    if (to_end) {
        if (rd_kafka_query_watermark_offsets(r->campaigns, r->cfg->topic_campaigns, 0, &lo, &hi, 10000)) hi = 0;
        pos = lo;
    }
    int64_t deadline = cx_mono_ms() + 60000;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->campaigns, to_end && pos < hi ? 100 : 0);
        if (!m) {
            if (!to_end || pos >= hi) return CX_OK;
            if (stopping(r)) {
                cx_seterr(errstr, n, "stopped by a signal while reading %s", r->cfg->topic_campaigns);
                return CX_ERR_TIMEOUT;
            }
            if (cx_mono_ms() > deadline) {
                cx_seterr(errstr, n, "reading %s to its end timed out", r->cfg->topic_campaigns);
                return CX_ERR_TIMEOUT;
            }
            continue;
        }
        cx_err_t rc = CX_OK;
        if (!m->err && strcmp(rd_kafka_topic_name(m->rkt), r->cfg->topic_partials) == 0) {
            rc = apply_partial(r, m);
        } else if (!m->err) {
            rc = apply_campaign(r, m);
            pos = m->offset + 1;
        }
        rd_kafka_message_destroy(m);
        if (rc != CX_OK) return rc;
    }
}

cx_err_t cx_runner_start(cx_runner_t *r, char *errstr, size_t n) {
    const rd_kafka_metadata_t *md = NULL;
    /* output schemas first: their ids must be known before anything is produced */
    if (r->registry && cx_registry_register_outputs(r->registry, r->cfg, r->codec, errstr, n) != CX_OK)
        return CX_ERR_IO;
    /* in half-second slices, so that a stop signal is not kept waiting for an unreachable cluster */
    rd_kafka_resp_err_t err;
    int64_t md_deadline = cx_mono_ms() + 30000;
    while ((err = rd_kafka_metadata(r->producer, 1, NULL, &md, 500)) == RD_KAFKA_RESP_ERR__TIMED_OUT &&
           cx_mono_ms() < md_deadline && !stopping(r))
        ;
    if (stopping(r)) {
        cx_seterr(errstr, n, "stopped by a signal while waiting for the cluster");
        rd_kafka_metadata_destroy(md);
        return CX_ERR_TIMEOUT;
    }
    if (err) {
        cx_seterr(errstr, n, "cannot read cluster metadata from %s: %s", cx_config_bootstrap_servers(r->cfg),
                  rd_kafka_err2str(err));
        return CX_ERR_KAFKA;
    }
    cx_err_t rc = CX_OK;
    r->n_parts = -1;
    for (int i = 0; i < CX_INPUTS; i++) {
        int32_t pc = topic_partitions(md, r->in_topics[i]);
        if (pc <= 0) {
            cx_seterr(errstr, n,
                      "input topic %s does not exist (create the four input topics with equal partition counts)",
                      r->in_topics[i]);
            rc = CX_ERR_CONFIG;
            goto done;
        }
        if (r->n_parts >= 0 && pc != r->n_parts) {
            cx_seterr(errstr, n, "input topics are not co-partitioned: %s has %d partitions, %s has %d",
                      r->in_topics[0], r->n_parts, r->in_topics[i], pc);
            rc = CX_ERR_CONFIG;
            goto done;
        }
        r->n_parts = pc;
    }
    if (r->n_parts > CX_PARTS_MAX) {
        cx_seterr(errstr, n, "%d input partitions: at most %d are supported", r->n_parts, CX_PARTS_MAX);
        rc = CX_ERR_CONFIG;
        goto done;
    }
    if (r->opts.create_topics && (rc = create_topics(r, md, errstr, n)) != CX_OK) goto done;
    if (r->eos) {
        rd_kafka_error_t *e = rd_kafka_init_transactions(r->producer, 60000);
        if (e) {
            cx_seterr(errstr, n, "init_transactions: %s", rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            rc = CX_ERR_KAFKA;
            goto done;
        }
        cx_log(CX_LOG_INFO, "txn", "exactly_once: transactions initialised");
    }
    if (!(r->q = calloc((size_t)r->n_parts * CX_INPUTS, sizeof *r->q))) {
        rc = CX_ERR_NOMEM;
        goto done;
    }
    /* the global campaign table first, in full */
    rd_kafka_topic_partition_list_t *gl = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(gl, r->cfg->topic_campaigns, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_topic_partition_list_add(gl, r->cfg->topic_partials, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    cx_campaigns_set_partitions(cx_pipeline_campaigns(r->pl), r->n_parts); /* KPI owner: murmur2(c) mod P */
    rd_kafka_assign(r->campaigns, gl);
    rd_kafka_topic_partition_list_destroy(gl);
    if ((rc = poll_campaigns(r, true, errstr, n)) != CX_OK) goto done;
    rd_kafka_topic_partition_list_t *sl = rd_kafka_topic_partition_list_new(CX_INPUTS);
    for (int i = 0; i < CX_INPUTS; i++)
        rd_kafka_topic_partition_list_add(sl, r->in_topics[i], RD_KAFKA_PARTITION_UA);
    err = rd_kafka_subscribe(r->consumer, sl);
    rd_kafka_topic_partition_list_destroy(sl);
    if (err) {
        cx_seterr(errstr, n, "subscribe failed: %s", rd_kafka_err2str(err));
        rc = CX_ERR_KAFKA;
    }
    r->last_commit_ms = cx_mono_ms();
    if (rc == CX_OK) atomic_store(&r->started, true);
    cx_log(CX_LOG_INFO, "consumer", "started partitions=%d group=%s campaigns=%" PRIu64 " commit_interval_ms=%" PRId64,
           r->n_parts, r->cfg->group_id, r->st.campaigns, r->commit_ms);
done:
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* ---------- merge and process ---------- */

/* A long queue is paused while the merge waits for another input of its partition (it would crowd
 * that input out) or the buffer is full; not otherwise, as pausing discards what librdkafka has
 * fetched for it, to fetch it again. */
/* Pauses or resumes the fetching of input i's partition p. */
static void set_paused(cx_runner_t *r, int32_t p, int i, bool pause) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, r->in_topics[i], p);
    if (pause)
        rd_kafka_pause_partitions(r->consumer, l);
    else
        rd_kafka_resume_partitions(r->consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    Q(r, p, i)->paused = pause;
}

static void pause_if_long(cx_runner_t *r, int32_t p, int i) {
    inq_t *q = Q(r, p, i);
    if (q->paused || q->rq.n < (size_t)r->cfg->input_max_buffered) return;
    if (!Q(r, p, 0)->merge_waits && r->buffered_bytes < r->buffer_bound) return;
    set_paused(r, p, i, true);
}

/* Copies m into its input's queue (recq.h) and destroys it: what waits for the merge no longer pins
 * librdkafka's buffers. */
static void enqueue(cx_runner_t *r, rd_kafka_message_t *m) {
    int i = input_of_topic(r, rd_kafka_topic_name(m->rkt));
    int32_t p = m->partition;
    if (i < 0 || p < 0 || p >= r->n_parts || !Q(r, p, i)->assigned) {
        rd_kafka_message_destroy(m);
        return;
    }
    inq_t *q = Q(r, p, i);
    size_t before = q->rq.bytes;
    cx_err_t rc = cx_recq_push(&q->rq, m->offset, m->key, m->key_len, m->payload, m->len);
    r->buffered_bytes += q->rq.bytes - before;
    if (rc != CX_OK) {
        /* cannot buffer: drop it and rewind the fetch to it (never lose it) */
        cx_log(CX_LOG_WARN, "consumer", "cannot buffer topic=%s partition=%" PRId32 " offset=%" PRId64 ": %s",
               r->in_topics[i], p, m->offset, cx_err2str(rc));
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, r->in_topics[i], p)->offset = m->offset;
        rd_kafka_seek_partitions(r->consumer, l, 1000);
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_message_destroy(m);
        return;
    }
    q->position = m->offset + 1;
    rd_kafka_message_destroy(m);
    q->idle_since_ms = 0;
    r->st.consumed++;
    r->st.consumed_in[i]++;
    pause_if_long(r, p, i);
}

static void dequeue(cx_runner_t *r, int32_t p, int i) {
    inq_t *q = Q(r, p, i);
    size_t before = q->rq.bytes;
    cx_recq_pop(&q->rq);
    r->buffered_bytes -= before - q->rq.bytes;
    q->head_ready = false;
    if (q->paused && q->rq.n <= (size_t)r->cfg->input_max_buffered / 4) set_paused(r, p, i, false);
}

/* Decodes the head of q; an invalid head goes to the DLQ and is dropped. false when q is empty. */
static bool head(cx_runner_t *r, int32_t p, int i, cx_err_t *rc) {
    inq_t *q = Q(r, p, i);
    while (q->rq.n) {
        if (q->head_ready) return true;
        const cx_rec_t *m = cx_recq_at(&q->rq, 0);
        q->detail[0] = 0;
        cx_dlq_code_t code = cx_registry_decode_event(r->registry, r->codec, cx_codec_kind_of_event((cx_event_type_t)i),
                                                      cx_rec_payload(m), m->len, &q->ev, q->detail, sizeof q->detail);
        if (code == CX_DLQ_NONE) {
            /* now_ms is read once per poll round (cx_runner_poll) and again only for an event that
             * would be too far in the future against it: the same verdict as a clock read per event */
            if (q->ev.ts_ms > r->chk.now_ms + r->chk.max_future_ms) r->chk.now_ms = cx_wall_ms();
            code = cx_codec_check_event(&q->ev, &r->chk, q->detail, sizeof q->detail);
        }
        if (code != CX_DLQ_NONE) {
            /* a rejected record still advances the partition's next offset once it is out */
            if ((*rc = send_dlq(r, r->in_topics[i], p, m->offset, cx_rec_key(m), m->key_len, cx_rec_payload(m), m->len,
                                code, q->detail)) != CX_OK)
                return false;
            cx_pipeline_skip(r->pl, (uint16_t)p, i, m->offset);
            dequeue(r, p, i);
            continue;
        }
        if (q->ev.type == CX_EV_SURVEY && q->ev.u.survey.has_comment) {
            cx_buf_reset(&q->comment);
            cx_buf_append(&q->comment, q->ev.u.survey.comment, q->ev.u.survey.comment_len);
            q->ev.u.survey.comment = (const char *)q->comment.data;
        }
        q->head_ready = true;
        return true;
    }
    return false;
}

/* The customers of the records a few places behind q's head are looked up soon: their hash slot,
 * cache entry, profile and its latest bucket are loaded in stages, so that each stage's load has
 * arrived when the next one reads it and the record's own lookup finds everything in the CPU cache. */
static void prefetch_ahead(cx_runner_t *r, const inq_t *q) {
    static const size_t dist[] = {16, 12, 8, 4};
    for (int s = 0; s < 4; s++) {
        if (dist[s] >= q->rq.n) continue;
        const cx_rec_t *m = cx_recq_at(&q->rq, dist[s]);
        if (m->has_key) cx_pipeline_prefetch(r->pl, cx_rec_key(m), m->key_len, s);
    }
}

static cx_err_t process_partition(cx_runner_t *r, int32_t p, char *errstr, size_t n) {
    const cx_config_t *cfg = r->cfg;
    for (int done = 0;; done++) {
        if (done == ROUND_EVENTS) {
            r->more_work = true;
            return CX_OK;
        }
        int best = -1;
        bool wait = false;
        int64_t now = 0; /* read only when an input is idle */
        for (int i = 0; i < CX_INPUTS; i++) {
            inq_t *q = Q(r, p, i);
            if (!q->assigned) continue;
            cx_err_t rc = CX_OK;
            if (head(r, p, i, &rc)) {
                if (best < 0 || q->ev.ts_ms < Q(r, p, best)->ev.ts_ms) best = i; /* ties: lower i first */
                continue;
            }
            if (rc != CX_OK) return rc;
            int64_t lo = 0, hi = -1;
            rd_kafka_get_watermark_offsets(r->consumer, r->in_topics[i], p, &lo, &hi);
            if (hi < 0 || (q->position >= 0 && q->position < hi)) {
                if (!q->rq.n) {
                    r->behind_p = p;
                    r->behind_i = i;
                }
                /* records exist that we have not fetched yet, or no fetch has answered yet (the
                 * cached high watermark is unknown right after an assignment: treating that as
                 * "at the end" let other inputs run ahead and made this one's events late) */
                wait = true;
            } else {
                if (!now) now = cx_mono_ms();
                if (!q->idle_since_ms) q->idle_since_ms = now;
                if (now - q->idle_since_ms < cfg->input_max_idle_ms) wait = true;
            }
        }
        Q(r, p, 0)->merge_waits = best >= 0 && wait;
        if (Q(r, p, 0)->merge_waits)
            for (int i = 0; i < CX_INPUTS; i++)
                if (Q(r, p, i)->assigned) pause_if_long(r, p, i);
        if (best < 0 || wait) return CX_OK;
        inq_t *q = Q(r, p, best);
        int64_t offset = cx_recq_at(&q->rq, 0)->offset;
        bool more = true;
        cx_err_t rc = CX_OK;
        uint64_t recoveries = r->st.recoveries; /* a recovery inside commit_cycle cleared the queues */
        while (more && rc == CX_OK) {
            rc = cx_pipeline_advance(r->pl, (uint16_t)p, q->ev.ts_ms - cfg->watermark_lateness_ms, &more, errstr, n);
            /* a storm of due timers is cut into batches; between them the state is written only when
             * the cache is full or the commit interval has passed (a flush per batch of 4,096 timers
             * was 247 flushes for 1 M events in bench_core) */
            if (rc == CX_OK &&
                (cx_pipeline_needs_flush(r->pl) || (more && cx_mono_ms() - r->last_commit_ms >= r->commit_ms)))
                rc = commit_cycle(r, COMMIT_ASYNC, errstr, n);
            if (rc == CX_OK && more) rd_kafka_poll(r->producer, 0); /* delivery reports */
            if (r->st.recoveries != recoveries) return rc;
        }
        if (rc == CX_OK) rc = cx_pipeline_event(r->pl, (uint16_t)p, &q->ev, offset, errstr, n);
        if (rc != CX_OK) return rc;
        dequeue(r, p, best);
        prefetch_ahead(r, q);
        if (cx_pipeline_needs_flush(r->pl) && (rc = commit_cycle(r, COMMIT_ASYNC, errstr, n)) != CX_OK) return rc;
        if (r->st.recoveries != recoveries) return CX_OK;
    }
}

/* The input went quiet (a poll waited and nothing came): what was processed since the last commit is
 * committed now instead of at the end of the interval, at most once a second (and never more often
 * than the interval), so idle time does the commit's work and a caught-up instance's offsets, state
 * and (exactly_once) outputs are durable and visible soon after its last record. */
#define IDLE_COMMIT_MIN_MS 1000
static bool idle_commit_due(const cx_runner_t *r, int64_t now_ms) {
    int64_t floor_ms = r->commit_ms < IDLE_COMMIT_MIN_MS ? r->commit_ms : IDLE_COMMIT_MIN_MS;
    return now_ms - r->last_commit_ms >= floor_ms && progress(r) != r->progress_at_commit;
}

static cx_err_t poll_batch(cx_runner_t *r, rd_kafka_message_t **msgs, ssize_t got, bool idle, char *errstr, size_t n) {
    if (r->fatal) {
        for (ssize_t k = 0; k < got; k++)
            rd_kafka_message_destroy(msgs[k]);
        cx_seterr(errstr, n, "%s", r->fatal_msg);
        return CX_ERR_FATAL;
    }
    /* what librdkafka has queued moves into the merge's compact queues (recq.h), a batch at a time
     * until a batch comes back short or the queues hold input.buffer_kb */
    for (;;) {
        for (ssize_t k = 0; k < got; k++) {
            rd_kafka_message_t *m = msgs[k];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    cx_log(CX_LOG_WARN, "consumer", "consume error err=\"%s\"", rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            enqueue(r, m);
        }
        if (got < CONSUME_BATCH || r->buffered_bytes >= r->buffer_bound) break;
        if ((got = rd_kafka_consume_batch_queue(r->cq, 0, msgs, CONSUME_BATCH)) < 0) got = 0;
    }
    rd_kafka_poll(r->producer, 0); /* delivery reports */
    cx_err_t rc = poll_campaigns(r, false, errstr, n);
    /* other instances' watermarks may have raised the merged watermark: a KPI owner whose own
     * partitions are quiet must still produce the records now due (the final closed one) */
    if (rc == CX_OK) rc = cx_campaigns_tick(cx_pipeline_campaigns(r->pl));
    r->more_work = false;
    r->behind_i = -1;
    for (int32_t p = 0; p < r->n_parts && rc == CX_OK; p++)
        if (cx_pipeline_owns(r->pl, (uint16_t)p)) rc = process_partition(r, p, errstr, n);
    if (rc == CX_OK) {
        int64_t now = cx_mono_ms();
        bool interval = now - r->last_commit_ms >= r->commit_ms;
        if (interval || (idle && idle_commit_due(r, now))) {
            if (!interval) r->st.idle_commits++;
            rc = commit_cycle(r, COMMIT_ASYNC, errstr, n);
        }
    }
    if (rc != CX_OK && !r->fatal) {
        /* an event may be half applied and its outputs lost: nothing may be committed after this,
         * neither by cx_runner_close nor by the revoke it causes */
        r->fatal = true;
        snprintf(r->fatal_msg, sizeof r->fatal_msg, "%s", errstr ? errstr : cx_err2str(rc));
    }
    return rc;
}

/* librdkafka 2.0.2 stops fetching once its queue has exceeded queued.max.messages.kbytes and looks
 * again only when its broker thread wakes: on a request, a response, or after a second. Draining its
 * queue does not wake it. When the merge waits for records the broker has and nothing is queued, a
 * ListOffsets request to that partition's leader wakes the thread that fetches it (and refreshes the
 * high watermark the merge reads); at most every 10 ms, and only while the merge would wait anyway. */
#define WAKE_MIN_MS 10
static void wake_fetcher(cx_runner_t *r) {
    if (r->behind_i < 0) return;
    int64_t now = cx_mono_ms();
    if (now - r->woken_ms < WAKE_MIN_MS) return;
    r->woken_ms = now;
    int64_t lo, hi;
    rd_kafka_query_watermark_offsets(r->consumer, r->in_topics[r->behind_i], r->behind_p, &lo, &hi, 1000);
    r->st.fetcher_wakes++;
}

cx_err_t cx_runner_poll(cx_runner_t *r, int timeout_ms, char *errstr, size_t n) {
    rd_kafka_message_t *msgs[CONSUME_BATCH];
    /* the wait happens outside the lock, so HTTP handlers read the pipeline meanwhile */
    /* take what is queued without waiting; only when nothing is, wait for the first record: the
     * batch call itself waits until the whole batch is filled or the timeout passes, so a merge
     * that needed one partition's next fetch sat idle while fewer than a batch were queued */
    /* a full buffer takes more only when the merge cannot go on without it */
    ssize_t got = 0;
    if (!r->more_work || r->buffered_bytes < r->buffer_bound)
        got = rd_kafka_consume_batch_queue(r->cq, 0, msgs, CONSUME_BATCH);
    if (got < 0) got = 0;
    double waited_s = 0;
    bool idle = false;
    if (got == 0 && timeout_ms != 0 && !r->more_work) {
        wake_fetcher(r);
        double t0 = cx_mono_s();
        rd_kafka_message_t *first = rd_kafka_consume_queue(r->cq, timeout_ms);
        waited_s = cx_mono_s() - t0;
        if (first) {
            msgs[0] = first;
            got = rd_kafka_consume_batch_queue(r->cq, 0, msgs + 1, CONSUME_BATCH - 1);
            got = got < 0 ? 1 : got + 1;
        } else
            idle = true;
    }
    atomic_store(&r->heartbeat_ms, cx_mono_ms());
    cx_runner_lock(r);
    r->chk.now_ms = cx_wall_ms(); /* for the future-timestamp check of this round's events (head) */
    r->st.input_wait_s += waited_s;
    cx_err_t rc = poll_batch(r, msgs, got, idle, errstr, n);
    cx_runner_unlock(r);
    return rc;
}

cx_err_t cx_runner_close(cx_runner_t *r, char *errstr, size_t n) {
    cx_runner_lock(r);
    r->owners_quiet = true;
    cx_err_t rc = r->fatal ? CX_ERR_FATAL : commit_cycle(r, COMMIT_FINAL, errstr, n);
    if (r->fatal) cx_seterr(errstr, n, "%s", r->fatal_msg);
    /* on a fatal error nothing more is committed: the revoke in close must not commit either */
    if (rc != CX_OK) r->fatal = true;
    rd_kafka_consumer_close(r->consumer);
    atomic_store(&r->started, false);
    cx_runner_unlock(r);
    return rc;
}

/* ---------- access for HTTP readers (runner.h) ---------- */

void cx_runner_lock(cx_runner_t *r) {
    pthread_mutex_lock(&r->mu);
}
void cx_runner_unlock(cx_runner_t *r) {
    pthread_mutex_unlock(&r->mu);
}

bool cx_runner_lock_timed(cx_runner_t *r, int timeout_ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_timedlock(&r->mu, &ts) == 0;
}

bool cx_runner_started(cx_runner_t *r) {
    return atomic_load(&r->started);
}
int64_t cx_runner_heartbeat_ms(cx_runner_t *r) {
    return atomic_load(&r->heartbeat_ms);
}
int32_t cx_runner_partition_count(const cx_runner_t *r) {
    return r->n_parts > 0 ? r->n_parts : 0;
}
const char *cx_runner_input_topic(const cx_runner_t *r, int input) {
    return input >= 0 && input < CX_INPUTS ? r->in_topics[input] : NULL;
}
int64_t cx_runner_partition_lag(const cx_runner_t *r, int32_t p, int input) {
    if (!r->lag || p < 0 || p >= r->n_parts || input < 0 || input >= CX_INPUTS) return -1;
    return r->lag[p * CX_INPUTS + input];
}
cx_store_t *cx_runner_store(cx_runner_t *r) {
    return r->store;
}
cx_runner_restore_t cx_runner_restore_status(const cx_runner_t *r) {
    return r->rs;
}

cx_runner_stats_t cx_runner_stats(const cx_runner_t *r) {
    cx_runner_stats_t s = r->st;
    s.input_buffered_bytes = r->buffered_bytes;
    s.partitions = 0;
    s.paused_inputs = 0;
    for (int32_t p = 0; p < r->n_parts; p++)
        if (cx_pipeline_owns(r->pl, (uint16_t)p)) s.partitions++;
    for (int32_t k = 0; k < r->n_parts * CX_INPUTS; k++)
        if (r->q[k].assigned && r->q[k].paused) s.paused_inputs++;
    return s;
}

void cx_runner_http_serving(cx_runner_t *r) {
    atomic_store(&r->http_serving, true);
}

bool cx_runner_owner(cx_runner_t *r, int32_t p, char *addr, size_t addr_size) {
    return cx_owners_get(r->owners, p, addr, addr_size);
}

cx_pipeline_t *cx_runner_pipeline(cx_runner_t *r) {
    return r->pl;
}

int64_t cx_runner_lag(cx_runner_t *r) {
    int64_t lag = 0;
    bool any = false;
    for (int32_t p = 0; p < r->n_parts; p++) {
        if (!cx_pipeline_owns(r->pl, (uint16_t)p)) continue;
        int64_t off[CX_INPUTS];
        cx_pipeline_offsets(r->pl, (uint16_t)p, off);
        for (int i = 0; i < CX_INPUTS; i++) {
            int64_t lo = 0, hi = -1;
            if (rd_kafka_get_watermark_offsets(r->consumer, r->in_topics[i], p, &lo, &hi) || hi < 0) continue;
            int64_t pos = Q(r, p, i)->position;
            int64_t done = off[i] >= 0 ? off[i] : (pos >= 0 ? pos : lo);
            lag += hi > done ? hi - done : 0;
            any = true;
        }
    }
    return any ? lag : -1;
}

/* ---------- cxstream run ---------- */

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void run_usage(FILE *f) {
    fprintf(f, "usage: cxstream run -c FILE [--set key=value]...\n"
               "Consumes the input topics in consumer group group.id, keeps state in state.dir and\n"
               "produces the output topics. SIGINT/SIGTERM: commit, leave the group, exit 0.\n"
               "Configuration reference: cxstream help config\n");
}

/* ---------- pipelines on threads (processing.threads) ---------- */

/* Thread k's configuration of n: the instance's own, with state in state.dir/thread-k, an equal
 * share of the cache and RocksDB pools, and its own client.id (and group.instance.id) so that the
 * range assignor orders the members of one process the same way every time (thread 0 first). */
static cx_config_t *thread_config(const cx_cli_conf_t *cc, const cx_config_t *base, int k, int n, char *err,
                                  size_t errsz) {
    cx_config_t *t = cx_cli_config(cc, err, errsz);
    if (!t) return NULL;
    char v[4096];
    const char *src = "processing.threads";
    const char *client = cx_config_kafka_value(base, "client.id");
    const char *inst = cx_config_kafka_value(base, "group.instance.id");
    struct {
        const char *key;
        int64_t total;
    } shares[] = {{"cache.max_customers", base->cache_max_customers},
                  {"cache.max_decoded", base->cache_max_decoded},
                  {"state.block_cache_mb", base->state_block_cache_mb},
                  {"state.write_buffer_mb", base->state_write_buffer_mb}};
    snprintf(v, sizeof v, "%s/thread-%d", base->state_dir, k);
    if (cx_config_set(t, "state.dir", v, src, err, errsz) != CX_OK) goto fail;
    for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++) {
        snprintf(v, sizeof v, "%" PRId64, shares[i].total / n > 0 ? shares[i].total / n : 1);
        if (cx_config_set(t, shares[i].key, v, src, err, errsz) != CX_OK) goto fail;
    }
    snprintf(v, sizeof v, "%s-t%d", client && *client ? client : "cxstream", k);
    if (cx_config_set(t, "kafka.client.id", v, src, err, errsz) != CX_OK) goto fail;
    if (inst && *inst) {
        snprintf(v, sizeof v, "%s-t%d", inst, k);
        if (cx_config_set(t, "kafka.group.instance.id", v, src, err, errsz) != CX_OK) goto fail;
    }
    return t;
fail:
    cx_config_destroy(t);
    return NULL;
}

typedef struct run_thread {
    cx_runner_t *r;
    int k;
    atomic_int *failed; /* shared: a pipeline stopped on an error, so every other one stops too */
    int rcode;          /* CX_EXIT_OK, or CX_EXIT_RUNTIME */
} run_thread_t;

/* One pipeline's loop until a stop signal or a failure anywhere, then its final commit. */
static void *run_thread_main(void *arg) {
    run_thread_t *t = arg;
    char err[512] = "";
    t->rcode = CX_EXIT_RUNTIME;
    while (!stop_flag && !atomic_load(t->failed)) {
        if (cx_runner_poll(t->r, 100, err, sizeof err) != CX_OK) {
            cx_log(CX_LOG_ERROR, "run", "stopping err=\"%s\" thread=%d", err, t->k);
            atomic_store(t->failed, 1);
            cx_runner_close(t->r, err, sizeof err);
            return NULL;
        }
    }
    if (stop_flag) cx_log(CX_LOG_INFO, "run", "signal received: committing and leaving the group thread=%d", t->k);
    if (cx_runner_close(t->r, err, sizeof err) != CX_OK) {
        cx_log(CX_LOG_ERROR, "run", "final commit failed err=\"%s\" thread=%d", err, t->k);
        return NULL;
    }
    cx_runner_stats_t st = cx_runner_stats(t->r);
    cx_pipeline_stats_t ps = cx_pipeline_stats(cx_runner_pipeline(t->r));
    cx_log(CX_LOG_INFO, "run",
           "stopped consumed=%" PRIu64 " events=%" PRIu64 " duplicates=%" PRIu64 " commits=%" PRIu64
           " idle_commits=%" PRIu64 " input_wait_s=%.2f thread=%d",
           st.consumed, ps.events, ps.duplicates, st.commits, st.idle_commits, st.input_wait_s, t->k);
    t->rcode = CX_EXIT_OK;
    return NULL;
}

int cx_cmd_run(int argc, char **argv) {
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"set", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    cx_cli_conf_t cc = {0};
    int c, rcode = CX_EXIT_USAGE, n = 0, spawned = 0;
    char err[512] = "";
    cx_config_t *cfg = NULL;
    cx_config_t *tcfg[CX_THREADS_MAX] = {0};
    cx_runner_t *rs[CX_THREADS_MAX] = {0};
    run_thread_t th[CX_THREADS_MAX];
    pthread_t tid[CX_THREADS_MAX];
    atomic_int failed = 0;
    cx_http_t *http = NULL;
    /* first: a stop signal at any point from here on is a clean stop (exit 0), even one that
     * arrives while the configuration is read or the store opened */
    cx_cli_catch_stop_signals(on_signal);
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': cc.file = optarg; break;
        case 's': cx_cli_add_set(&cc, optarg); break;
        case 'h':
            run_usage(stdout);
            rcode = CX_EXIT_OK;
            goto done;
        default: run_usage(stderr); goto done;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cxstream run: unexpected argument '%s'\n", argv[optind]);
        goto done;
    }
    if (!(cfg = cx_cli_config(&cc, err, sizeof err))) {
        fprintf(stderr, "cxstream run: %s\n", err);
        goto done;
    }
    n = cfg->processing_threads;
    if (n > 1 && mkdir(cfg->state_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "cxstream run: state.dir=%s: %s (processing.threads=%d keeps state.dir/thread-K)\n",
                cfg->state_dir, strerror(errno), n);
        rcode = CX_EXIT_RUNTIME;
        goto done;
    }
    for (int k = 0; k < n; k++)
        if (n > 1 && !(tcfg[k] = thread_config(&cc, cfg, k, n, err, sizeof err))) {
            fprintf(stderr, "cxstream run: thread %d: %s\n", k, err);
            goto done;
        }
    cx_runner_opts_t ro = {.create_topics = true, .stop = &stop_flag};
    for (int k = 0; k < n; k++)
        if (!(rs[k] = cx_runner_new(n > 1 ? tcfg[k] : cfg, &ro, err, sizeof err))) {
            fprintf(stderr, "cxstream run: %s\n", err);
            goto done;
        }
    /* HTTP first, so /healthz and /readyz answer while the campaign table is read */
    if (cfg->http_port && !(http = cx_http_start_runners(cfg, rs, (size_t)n, err, sizeof err))) {
        fprintf(stderr, "cxstream run: http: %s\n", err);
        rcode = CX_EXIT_RUNTIME;
        goto done;
    }
    for (int k = 0; k < n; k++) {
        /* Once the signal is seen no further runner starts (the error code stands for "not started")
         * and those started before are closed below; a signal after the last start is the loop's,
         * which commits and closes every runner as any running stop. */
        cx_err_t rc = stop_flag ? CX_ERR_TIMEOUT : cx_runner_start(rs[k], err, sizeof err);
        if (rc != CX_OK) {
            if (stop_flag) { /* nothing consumed yet, so nothing to commit */
                cx_log(CX_LOG_INFO, "run", "signal received during start-up: stopped before joining the group");
                rcode = CX_EXIT_OK;
            } else {
                fprintf(stderr, "cxstream run: %s\n", err);
                rcode = rc == CX_ERR_CONFIG ? CX_EXIT_USAGE : CX_EXIT_RUNTIME;
            }
            for (int j = 0; j < k; j++)
                cx_runner_close(rs[j], err, sizeof err);
            goto done;
        }
    }
    if (n > 1) cx_log(CX_LOG_INFO, "run", "pipelines threads=%d state.dir=%s/thread-K", n, cfg->state_dir);
    /* thread 0's loop runs here; the others on their own threads */
    for (int k = 0; k < n; k++)
        th[k] = (run_thread_t){.r = rs[k], .k = k, .failed = &failed, .rcode = CX_EXIT_RUNTIME};
    for (spawned = 1; spawned < n; spawned++)
        if (pthread_create(&tid[spawned], NULL, run_thread_main, &th[spawned]) != 0) {
            cx_log(CX_LOG_ERROR, "run", "cannot start pipeline thread %d", spawned);
            atomic_store(&failed, 1);
            for (int j = spawned; j < n; j++)
                cx_runner_close(rs[j], err, sizeof err);
            break;
        }
    run_thread_main(&th[0]);
    rcode = th[0].rcode;
    for (int k = 1; k < spawned; k++) {
        pthread_join(tid[k], NULL);
        if (th[k].rcode != CX_EXIT_OK) rcode = CX_EXIT_RUNTIME;
    }
    if (atomic_load(&failed)) rcode = CX_EXIT_RUNTIME;
done:
    cx_http_stop(http); /* before the runners it reads */
    for (int k = 0; k < n; k++) {
        cx_runner_destroy(rs[k]);
        cx_config_destroy(tcfg[k]);
    }
    cx_config_destroy(cfg);
    cx_cli_conf_free(&cc);
    return rcode;
}
