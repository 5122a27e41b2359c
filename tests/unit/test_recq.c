/*
 * test_recq.c — the input record FIFO (recq.h): records come out in order with their bytes intact
 * (NULL and empty told apart), chunks are released as their records leave and reused, records larger
 * than a chunk get one of their own, and an emptied queue gives its memory back.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recq.h"

static void push_n(cx_recq_t *q, int from, int count) {
    char key[32], val[64];
    for (int k = from; k < from + count; k++) {
        int kl = snprintf(key, sizeof key, "cust-%d", k);
        int vl = snprintf(val, sizeof val, "payload of record %d", k);
        cr_assert_eq(cx_recq_push(q, 1000 + k, key, (size_t)kl, val, (size_t)vl), CX_OK);
    }
}

static void expect_head(cx_recq_t *q, int k) {
    char key[32], val[64];
    int kl = snprintf(key, sizeof key, "cust-%d", k);
    int vl = snprintf(val, sizeof val, "payload of record %d", k);
    const cx_rec_t *r = cx_recq_at(q, 0);
    cr_assert_eq(r->offset, 1000 + k);
    cr_assert_eq(r->key_len, (uint32_t)kl);
    cr_assert_eq(r->len, (uint32_t)vl);
    cr_assert(memcmp(cx_rec_key(r), key, (size_t)kl) == 0, "key of record %d", k);
    cr_assert(memcmp(cx_rec_payload(r), val, (size_t)vl) == 0, "payload of record %d", k);
}

Test(recq, fifo_order_across_chunks_and_ring_wraps) {
    cx_recq_t q = CX_RECQ_INIT;
    /* ~60 B per record: 5,000 records span several 64 KB chunks; interleaving pushes and pops wraps
     * the pointer ring */
    push_n(&q, 0, 3000);
    for (int k = 0; k < 2000; k++) {
        expect_head(&q, k);
        cx_recq_pop(&q);
    }
    push_n(&q, 3000, 2000);
    cr_assert_eq(q.n, 3000u);
    for (int k = 0; k < 3000; k++)
        expect_head(&q, 2000 + k), cx_recq_pop(&q);
    cr_assert_eq(q.n, 0u);
    cx_recq_free(&q);
    cr_assert_eq(q.bytes, 0u);
    cr_assert_null(q.ring);
}

Test(recq, at_reads_any_position) {
    cx_recq_t q = CX_RECQ_INIT;
    push_n(&q, 0, 300);
    for (int k = 0; k < 100; k++)
        cx_recq_pop(&q);
    push_n(&q, 300, 50); /* wraps the 256-slot ring before it grows */
    for (size_t k = 0; k < q.n; k++)
        cr_assert_eq(cx_recq_at(&q, k)->offset, (int64_t)(1100 + k));
    cx_recq_free(&q);
}

Test(recq, null_and_empty_are_different) {
    cx_recq_t q = CX_RECQ_INIT;
    cr_assert_eq(cx_recq_push(&q, 1, NULL, 5, NULL, 7), CX_OK); /* lengths of absent parts are ignored */
    cr_assert_eq(cx_recq_push(&q, 2, "", 0, "", 0), CX_OK);
    const cx_rec_t *a = cx_recq_at(&q, 0), *b = cx_recq_at(&q, 1);
    cr_assert_null(cx_rec_key(a));
    cr_assert_null(cx_rec_payload(a));
    cr_assert_eq(a->key_len + a->len, 0u);
    cr_assert_not_null(cx_rec_key(b));
    cr_assert_not_null(cx_rec_payload(b));
    cr_assert_eq(b->key_len + b->len, 0u);
    cx_recq_free(&q);
}

Test(recq, chunks_are_released_as_records_leave) {
    cx_recq_t q = CX_RECQ_INIT;
    push_n(&q, 0, 20000); /* ~1.3 MB: about 20 chunks */
    size_t full = q.bytes;
    cr_assert_gt(full, 1000000u);
    for (int k = 0; k < 15000; k++)
        cx_recq_pop(&q);
    cr_assert_lt(q.bytes, full / 2, "three quarters popped, %zu of %zu bytes still held", q.bytes, full);
    for (int k = 0; k < 5000; k++)
        cx_recq_pop(&q);
    /* empty: the ring and at most one chunk (the last, reset, and one spare) remain */
    cr_assert_leq(q.bytes, q.cap * sizeof(cx_rec_t *) + 2 * (64 * 1024 + 64));
    /* and it is reused from its start */
    push_n(&q, 7, 1);
    expect_head(&q, 7);
    cx_recq_free(&q);
}

Test(recq, clear_keeps_one_chunk_and_works_after) {
    cx_recq_t q = CX_RECQ_INIT;
    push_n(&q, 0, 5000);
    cx_recq_clear(&q);
    cr_assert_eq(q.n, 0u);
    cr_assert_leq(q.bytes, q.cap * sizeof(cx_rec_t *) + 64 * 1024 + 64);
    push_n(&q, 10, 3);
    expect_head(&q, 10);
    cx_recq_free(&q);
}

Test(recq, records_larger_than_a_chunk) {
    cx_recq_t q = CX_RECQ_INIT;
    size_t big = 200 * 1024;
    char *val = malloc(big);
    cr_assert_not_null(val);
    for (size_t k = 0; k < big; k++)
        val[k] = (char)(k * 7);
    push_n(&q, 0, 1);
    cr_assert_eq(cx_recq_push(&q, 5, "k", 1, val, big), CX_OK);
    push_n(&q, 2, 1);
    cx_recq_pop(&q);
    const cx_rec_t *r = cx_recq_at(&q, 0);
    cr_assert_eq(r->len, big);
    cr_assert(memcmp(cx_rec_payload(r), val, big) == 0);
    cx_recq_pop(&q);
    expect_head(&q, 2);
    cx_recq_pop(&q);
    /* an empty queue whose chunk is too small for the next record: the record gets its own */
    cr_assert_eq(cx_recq_push(&q, 6, NULL, 0, val, big), CX_OK);
    cr_assert_eq(cx_recq_push(&q, 7, NULL, 0, "x", 1), CX_OK);
    cr_assert_eq(cx_recq_at(&q, 0)->len, big);
    cx_recq_pop(&q);
    cr_assert_eq(cx_recq_at(&q, 0)->offset, 7);
    cx_recq_pop(&q);
    cr_assert_eq(q.n, 0u);
    cr_assert_lt(q.bytes, big, "the big record's chunk is released once it has left (%zu bytes held)", q.bytes);
    cx_recq_free(&q);
    free(val);
}
