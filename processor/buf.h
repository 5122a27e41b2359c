/*
 * buf.h — a growable byte buffer, reused across records so the hot path does not allocate once
 * it has reached its working size (sds-like, but plain: data, len, cap).
 */
#ifndef CX_BUF_H
#define CX_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "cx.h"

typedef struct cx_buf {
    uint8_t *data; /* owned; NULL until first growth */
    size_t len;
    size_t cap;
} cx_buf_t;

#define CX_BUF_INIT \
    { NULL, 0, 0 }

cx_err_t cx_buf_reserve(cx_buf_t *b, size_t extra); /* room for len + extra bytes */
cx_err_t cx_buf_append(cx_buf_t *b, const void *p, size_t n);
cx_err_t cx_buf_appendf(cx_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
cx_err_t cx_buf_putc(cx_buf_t *b, char c);
/* Appends s as a JSON string literal (quotes, escapes, invalid UTF-8 replaced by U+FFFD). */
cx_err_t cx_buf_json_str(cx_buf_t *b, const char *s, size_t n);
/* Appends d in the shortest form that strtod reads back to the same double (JSON-safe: NaN and
 * infinities are written as null). */
cx_err_t cx_buf_json_double(cx_buf_t *b, double d);
/* Varints (LEB128, unsigned) and zigzag signed varints for compact encodings (inline: a profile's
 * encoding and decoding are mostly these). */
static inline cx_err_t cx_buf_put_uvarint(cx_buf_t *b, uint64_t v) {
    if (b->cap - b->len < 11 && cx_buf_reserve(b, 11) != CX_OK) return CX_ERR_NOMEM;
    uint8_t *d = b->data + b->len;
    for (; v >= 0x80; v >>= 7)
        *d++ = (uint8_t)(v | 0x80);
    *d++ = (uint8_t)v;
    b->len = (size_t)(d - b->data);
    *d = 0; /* NUL-terminated, as cx_buf_append leaves it */
    return CX_OK;
}
static inline cx_err_t cx_buf_put_svarint(cx_buf_t *b, int64_t v) {
    return cx_buf_put_uvarint(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
/* Readers: return bytes consumed, 0 on truncation/overflow. */
size_t cx_get_uvarint_long(const uint8_t *p, size_t n, uint64_t *v); /* any length */
static inline size_t cx_get_uvarint(const uint8_t *p, size_t n, uint64_t *v) {
    if (n && p[0] < 0x80) {
        *v = p[0];
        return 1;
    }
    return cx_get_uvarint_long(p, n, v);
}
size_t cx_get_svarint(const uint8_t *p, size_t n, int64_t *v);
static inline void cx_buf_reset(cx_buf_t *b) {
    b->len = 0;
}
void cx_buf_free(cx_buf_t *b); /* frees data, zeroes the struct */

#endif
