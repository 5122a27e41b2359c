/*
 * recq.h — a FIFO of input records copied out of librdkafka, ahead of the event-time merge.
 *
 * A consumed rd_kafka_message_t costs librdkafka several hundred bytes besides its payload (the op,
 * the message, and the fetch or decompression buffer it pins until every message cut from that
 * buffer is destroyed): with ~54-byte records that was ~13 times the payload, ~415 MB of the run's
 * peak RSS for a 32 MB prefetch. The runner copies each record here (offset, key, payload: ~96 bytes
 * for a 54-byte record) and destroys the message at once, so what waits for the merge is held at
 * little more than its size and librdkafka's own queue stays short.
 *
 * Records are packed one after another into chunks (64 KB, or one record's size when larger); they
 * leave in the order they came, and a chunk is released (one is kept for reuse) when its last
 * record has left. A record's bytes stay where they are until it is popped.
 *
 * Ownership: the queue owns its chunks and records; a record pointer is valid until it is popped or
 * the queue is cleared or freed. Zero-initialised (CX_RECQ_INIT) is an empty queue.
 */
#ifndef CX_RECQ_H
#define CX_RECQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cx.h"

typedef struct cx_rec {
    int64_t offset;
    uint32_t key_len, len;
    bool has_key, has_payload; /* a NULL key or payload (tombstone) is not an empty one */
    /* key_len key bytes, then len payload bytes */
} cx_rec_t;

static inline const char *cx_rec_key(const cx_rec_t *r) {
    return r->has_key ? (const char *)(r + 1) : NULL;
}
static inline const void *cx_rec_payload(const cx_rec_t *r) {
    return r->has_payload ? (const char *)(r + 1) + r->key_len : NULL;
}

typedef struct cx_recq_chunk cx_recq_chunk_t;

typedef struct cx_recq {
    cx_rec_t **ring; /* the records in order: ring[(head + k) % cap] is the k-th */
    size_t head, n, cap;
    cx_recq_chunk_t *first, *last; /* chunks, oldest first */
    cx_recq_chunk_t *spare;        /* an empty chunk kept for reuse */
    size_t bytes;                  /* held by chunks and the ring */
} cx_recq_t;

#define CX_RECQ_INIT \
    { NULL, 0, 0, 0, NULL, NULL, NULL, 0 }

/* Copies a record in at the tail. Lengths above UINT32_MAX are CX_ERR_INVALID; CX_ERR_NOMEM leaves
 * the queue as it was. */
cx_err_t cx_recq_push(cx_recq_t *q, int64_t offset, const void *key, size_t key_len, const void *payload, size_t len);
/* The k-th record from the head (k < n). */
static inline cx_rec_t *cx_recq_at(const cx_recq_t *q, size_t k) {
    size_t i = q->head + k;
    return q->ring[i < q->cap ? i : i - q->cap];
}
/* Removes the head record (n > 0). */
void cx_recq_pop(cx_recq_t *q);
/* Removes every record; keeps one chunk and the ring for reuse. */
void cx_recq_clear(cx_recq_t *q);
/* Frees everything; the queue is empty (and reusable) afterwards. */
void cx_recq_free(cx_recq_t *q);

#endif
