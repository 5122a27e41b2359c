/*
 * buf.c — growable byte buffer, JSON string/double writers and varints (see buf.h).
 */
#include "buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cx_err_t cx_buf_reserve(cx_buf_t *b, size_t extra) {
    if (b->len + extra <= b->cap) return CX_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) return CX_ERR_NOMEM;
    b->data = d;
    b->cap = cap;
    return CX_OK;
}

cx_err_t cx_buf_append(cx_buf_t *b, const void *p, size_t n) {
    if (cx_buf_reserve(b, n + 1) != CX_OK) return CX_ERR_NOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0; /* keep text NUL-terminated for convenience; not counted in len */
    return CX_OK;
}

cx_err_t cx_buf_putc(cx_buf_t *b, char c) {
    return cx_buf_append(b, &c, 1);
}

cx_err_t cx_buf_appendf(cx_buf_t *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return CX_ERR_INVALID;
    if ((size_t)n < sizeof tmp) return cx_buf_append(b, tmp, (size_t)n);
    if (cx_buf_reserve(b, (size_t)n + 1) != CX_OK) return CX_ERR_NOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CX_OK;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07;
    } else
        return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

cx_err_t cx_buf_json_str(cx_buf_t *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    if (cx_buf_reserve(b, n + 3) != CX_OK) return CX_ERR_NOMEM;
    cx_err_t e = cx_buf_putc(b, '"');
    size_t i = 0;
    while (e == CX_OK && i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            e = cx_buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n': e = cx_buf_append(b, "\\n", 2); break;
            case '\r': e = cx_buf_append(b, "\\r", 2); break;
            case '\t': e = cx_buf_append(b, "\\t", 2); break;
            default: e = cx_buf_appendf(b, "\\u%04x", c); break;
            }
            i++;
        } else {
            size_t l = utf8_seq(p + i, n - i);
            if (l == 0) {
                e = cx_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                e = cx_buf_append(b, p + i, l);
                i += l;
            }
        }
    }
    return e == CX_OK ? cx_buf_putc(b, '"') : e;
}

cx_err_t cx_buf_json_double(cx_buf_t *b, double d) {
    if (!isfinite(d)) return cx_buf_append(b, "null", 4);
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* JSON has no bare integers-as-doubles problem, but keep a decimal point or exponent so a
     * reader sees a double: 1 -> 1.0 */
    if (!strpbrk(tmp, ".eEn")) strcat(tmp, ".0");
    return cx_buf_append(b, tmp, strlen(tmp));
}

size_t cx_get_uvarint_long(const uint8_t *p, size_t n, uint64_t *v) {
    uint64_t r = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        r |= (uint64_t)(p[i] & 0x7F) << (7 * i);
        if (!(p[i] & 0x80)) {
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

size_t cx_get_svarint(const uint8_t *p, size_t n, int64_t *v) {
    uint64_t u;
    size_t k = cx_get_uvarint(p, n, &u);
    if (k) *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return k;
}

void cx_buf_free(cx_buf_t *b) {
    if (!b) return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
