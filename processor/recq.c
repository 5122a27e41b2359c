/*
 * recq.c — the input record FIFO (recq.h).
 */
#include "recq.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_BYTES (64 * 1024)

struct cx_recq_chunk {
    cx_recq_chunk_t *next;
    size_t cap, used; /* bytes of data */
    size_t live;      /* records in it not yet popped */
    _Alignas(8) unsigned char data[];
};

static size_t rec_size(size_t key_len, size_t len) {
    return (sizeof(cx_rec_t) + key_len + len + 7) & ~(size_t)7;
}

static void chunk_release(cx_recq_t *q, cx_recq_chunk_t *c) {
    if (!q->spare && c->cap == CHUNK_BYTES) {
        q->spare = c;
        return;
    }
    q->bytes -= sizeof *c + c->cap;
    free(c);
}

/* A chunk with room for `need` bytes at the tail, or NULL. */
static cx_recq_chunk_t *tail_room(cx_recq_t *q, size_t need) {
    if (q->last && q->last->cap - q->last->used >= need) return q->last;
    if (q->last && !q->last->live) { /* an empty queue's chunk, too small for this record */
        chunk_release(q, q->last);
        q->first = q->last = NULL;
    }
    cx_recq_chunk_t *c;
    if (q->spare && q->spare->cap >= need) {
        c = q->spare;
        q->spare = NULL;
    } else {
        size_t cap = need > CHUNK_BYTES ? need : CHUNK_BYTES;
        if (!(c = malloc(sizeof *c + cap))) return NULL;
        c->cap = cap;
        q->bytes += sizeof *c + cap;
    }
    c->next = NULL;
    c->used = c->live = 0;
    if (q->last)
        q->last->next = c;
    else
        q->first = c;
    q->last = c;
    return c;
}

cx_err_t cx_recq_push(cx_recq_t *q, int64_t offset, const void *key, size_t key_len, const void *payload, size_t len) {
    if (!key) key_len = 0;
    if (!payload) len = 0;
    if (key_len > UINT32_MAX || len > UINT32_MAX || key_len + len > SIZE_MAX / 2) return CX_ERR_INVALID;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        cx_rec_t **a = malloc(cap * sizeof *a);
        if (!a) return CX_ERR_NOMEM;
        for (size_t k = 0; k < q->n; k++)
            a[k] = cx_recq_at(q, k);
        free(q->ring);
        q->bytes += (cap - q->cap) * sizeof *a;
        q->ring = a;
        q->head = 0;
        q->cap = cap;
    }
    size_t need = rec_size(key_len, len);
    cx_recq_chunk_t *c = tail_room(q, need);
    if (!c) return CX_ERR_NOMEM;
    cx_rec_t *r = (cx_rec_t *)(void *)(c->data + c->used);
    c->used += need;
    c->live++;
    r->offset = offset;
    r->key_len = (uint32_t)key_len;
    r->len = (uint32_t)len;
    r->has_key = key != NULL;
    r->has_payload = payload != NULL;
    if (key_len) memcpy(r + 1, key, key_len);
    if (len) memcpy((char *)(r + 1) + key_len, payload, len);
    size_t i = q->head + q->n;
    q->ring[i < q->cap ? i : i - q->cap] = r;
    q->n++;
    return CX_OK;
}

void cx_recq_pop(cx_recq_t *q) {
    if (!q->n) return;
    q->head = q->head + 1 == q->cap ? 0 : q->head + 1;
    q->n--;
    /* records leave in the order they came: the head record was in the oldest chunk */
    cx_recq_chunk_t *c = q->first;
    if (--c->live) return;
    if (c == q->last) { /* the queue is empty: reuse the chunk from its start */
        c->used = 0;
        return;
    }
    q->first = c->next;
    chunk_release(q, c);
}

void cx_recq_clear(cx_recq_t *q) {
    cx_recq_chunk_t *c = q->first;
    while (c) {
        cx_recq_chunk_t *next = c->next;
        chunk_release(q, c);
        c = next;
    }
    q->first = q->last = NULL;
    q->head = q->n = 0;
}

void cx_recq_free(cx_recq_t *q) {
    cx_recq_clear(q);
    free(q->spare);
    free(q->ring);
    *q = (cx_recq_t)CX_RECQ_INIT;
}
