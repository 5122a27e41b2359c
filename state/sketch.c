/*
 * sketch.c — KLL quantiles and Space-Saving heavy hitters (see sketch.h for the contracts).
 *
 * KLL keeps a stack of "compactors" (levels); an item at level h stands for 2^h inputs. Level h
 * may hold about k·(2/3)^(H−1−h) items (at least 8), H being the number of levels. When the whole
 * sketch reaches the sum of those capacities, the lowest full level is sorted and halved: one
 * item of every adjacent pair (the even or the odd ones, by a coin flip) moves up a level, so
 * weight is conserved exactly and the rank of any value moves by at most 2^h per compaction, in
 * a direction that the coin makes unbiased. The coins come from a splitmix64 generator seeded
 * with a constant and kept in the sketch (and in its encoding), which makes the sketch a
 * deterministic function of its inputs. This is Liberty's reference kll.py with DataSketches'
 * minimum level width of 8; merge concatenates levels and compresses.
 *
 * Space-Saving keeps m (term, count, error) counters in an array, found through an
 * open-addressing hash table (linear probing, backward-shift deletion) and ordered by a binary
 * min-heap whose root is the counter to evict.
 *
 * Encodings (all integers LEB128 varints unless stated, doubles as 8 bytes little-endian IEEE
 * 754, a CRC-32 (IEEE) of everything before it as 4 bytes little-endian at the end):
 *   KLL   "KL" 0x01 k n [levels rng:u64le min max {len item*len}*levels] crc
 *         (the bracket only when n > 0; levels from the top one down to level 0)
 *   TopK  "TK" 0x01 m total size {len term-bytes count error}*size crc
 *         (items in top order: count desc, term asc, so equal summaries encode equally)
 */
#include "sketch.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SKETCH_VERSION 1

/* ------------------------------------------------------------------------------------------ */
/* Shared encoding helpers                                                                     */
/* ------------------------------------------------------------------------------------------ */

static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static cx_err_t put_u64le(cx_buf_t *b, uint64_t v) {
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return cx_buf_append(b, x, 8);
}

static uint64_t get_u64le(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static cx_err_t put_double(cx_buf_t *b, double d) {
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    return put_u64le(b, v);
}

static double get_double(const uint8_t *p) {
    uint64_t v = get_u64le(p);
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* Appends the CRC of out->data[start..len). */
static cx_err_t put_crc(cx_buf_t *out, size_t start) {
    uint32_t c = crc32_ieee(out->data + start, out->len - start);
    uint8_t x[4] = {(uint8_t)c, (uint8_t)(c >> 8), (uint8_t)(c >> 16), (uint8_t)(c >> 24)};
    return cx_buf_append(out, x, 4);
}

/* Checks magic, version and trailer; on success *body_end is where the CRC starts. */
static cx_err_t check_frame(const uint8_t *p, size_t len, char m0, char m1, const char *what, size_t *body_end,
                            char *errstr, size_t errstr_size) {
    if (!p || len < 3 + 4) {
        cx_seterr(errstr, errstr_size, "%s: truncated (%zu bytes)", what, len);
        return CX_ERR_INVALID;
    }
    if (p[0] != (uint8_t)m0 || p[1] != (uint8_t)m1) {
        cx_seterr(errstr, errstr_size, "%s: bad magic", what);
        return CX_ERR_INVALID;
    }
    if (p[2] != SKETCH_VERSION) {
        cx_seterr(errstr, errstr_size, "%s: unsupported version %u", what, p[2]);
        return CX_ERR_INVALID;
    }
    size_t end = len - 4;
    uint32_t want =
        (uint32_t)p[end] | (uint32_t)p[end + 1] << 8 | (uint32_t)p[end + 2] << 16 | (uint32_t)p[end + 3] << 24;
    if (crc32_ieee(p, end) != want) {
        cx_seterr(errstr, errstr_size, "%s: checksum mismatch", what);
        return CX_ERR_INVALID;
    }
    *body_end = end;
    return CX_OK;
}

/* A cursor over the body of an encoding; every read fails cleanly past the end. */
typedef struct reader {
    const uint8_t *p;
    size_t pos, end;
    bool ok;
} reader_t;

static uint64_t rd_uvarint(reader_t *r) {
    uint64_t v = 0;
    size_t used = r->ok ? cx_get_uvarint(r->p + r->pos, r->end - r->pos, &v) : 0;
    if (!used) {
        r->ok = false;
        return 0;
    }
    r->pos += used;
    return v;
}

static const uint8_t *rd_bytes(reader_t *r, size_t n) {
    if (!r->ok || r->end - r->pos < n) {
        r->ok = false;
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}

static uint64_t sat_add(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ------------------------------------------------------------------------------------------ */
/* KLL                                                                                         */
/* ------------------------------------------------------------------------------------------ */

#define KLL_MIN_WIDTH  8
#define KLL_MAX_LEVELS 64 /* an item at level 63 already weighs 2^63 */
#define KLL_SEED       UINT64_C(0x9E3779B97F4A7C15)

/* All retained items live in one buffer, the top level first and level 0 last, so that an add
 * is an append and a compaction's survivors land right where the level above ends:
 *
 *   items: [ level H−1 | level H−2 | … | level 1 | level 0 ][ free ]
 *   level h occupies [end[h+1], end[h]); end[H] = 0; end[0] = items in use.
 *
 * The buffer is sized to the sketch's capacity (the sum of the level widths), so memory is
 * ≈ 3k doubles however many values went in; it grows only when a level is added. */
struct cx_kll {
    uint32_t k;
    uint32_t nlevels; /* H ≥ 1 */
    uint64_t n;
    uint64_t rng;
    double min, max;
    double *items;   /* owned; kept across resets */
    size_t cap;      /* items allocated */
    size_t max_size; /* sum of the level widths for the current H */
    uint32_t end[KLL_MAX_LEVELS + 1];
};

#define KLL_USED(s)     ((size_t)(s)->end[0])
#define KLL_START(s, h) ((s)->end[(h) + 1])
#define KLL_LEN(s, h)   ((s)->end[(h)] - (s)->end[(h) + 1])

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ceil(k·(2/3)^depth), at least KLL_MIN_WIDTH; exact integer arithmetic so every platform
 * agrees. Past depth 30 the product is below 1 for any k ≤ 65535. */
static uint32_t kll_width(uint32_t k, uint32_t depth) {
    if (depth > 30) return KLL_MIN_WIDTH;
    uint64_t den = 1;
    for (uint32_t i = 0; i < depth; i++)
        den *= 3;
    uint64_t w = (((uint64_t)k << depth) + den - 1) / den;
    return w < KLL_MIN_WIDTH ? KLL_MIN_WIDTH : (uint32_t)w;
}

static size_t kll_max_size(uint32_t k, uint32_t nlevels) {
    size_t m = 0;
    for (uint32_t d = 0; d < nlevels; d++)
        m += kll_width(k, d);
    return m;
}

static cx_err_t kll_reserve(cx_kll_t *s, size_t need) {
    if (need <= s->cap) return CX_OK;
    if (need < s->max_size) need = s->max_size;
    if (need > UINT32_MAX) return CX_ERR_NOMEM;
    double *p = realloc(s->items, need * sizeof *p);
    if (!p) return CX_ERR_NOMEM;
    s->items = p;
    s->cap = need;
    return CX_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

cx_kll_t *cx_kll_new(uint32_t k) {
    if (k == 0) k = CX_KLL_DEFAULT_K;
    if (k < CX_KLL_MIN_K || k > CX_KLL_MAX_K) return NULL;
    cx_kll_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->k = k;
    cx_kll_reset(s);
    if (kll_reserve(s, s->max_size) != CX_OK) {
        free(s);
        return NULL;
    }
    return s;
}

void cx_kll_destroy(cx_kll_t *s) {
    if (!s) return;
    free(s->items);
    free(s);
}

void cx_kll_reset(cx_kll_t *s) {
    s->nlevels = 1;
    s->end[0] = s->end[1] = 0;
    s->n = 0;
    s->rng = KLL_SEED;
    s->min = NAN;
    s->max = NAN;
    s->max_size = kll_max_size(s->k, 1);
}

/* Halves level h into level h+1 (creating it when h is the top). Never allocates. Returns
 * false if nothing could be done (a level of fewer than 2 items, or no level above 63, which
 * fewer than 2^64 inputs never reach). */
static bool kll_compact(cx_kll_t *s, uint32_t h) {
    uint32_t start = KLL_START(s, h), len = KLL_LEN(s, h);
    uint32_t odd = len & 1u, pairs = len / 2;
    if (pairs == 0 || h + 1 >= KLL_MAX_LEVELS) return false;
    double *L = s->items + start;
    qsort(L, len, sizeof *L, cmp_double);
    /* An odd item out stays behind at level h: the smallest. */
    double leftover = L[0];
    uint32_t pick = odd + (uint32_t)(splitmix64(&s->rng) >> 63);
    for (uint32_t i = 0; i < pairs; i++)
        L[i] = L[pick + 2 * i]; /* reads never trail writes */
    if (odd) L[pairs] = leftover;
    if (h + 1 == s->nlevels) {
        s->nlevels++;
        s->end[s->nlevels] = 0;
        s->max_size = kll_max_size(s->k, s->nlevels);
    }
    s->end[h + 1] = start + pairs; /* level h+1 now ends with the survivors */
    /* close the gap of `pairs` items left between level h and the levels below it */
    uint32_t old_end = s->end[h], new_end = start + pairs + odd;
    memmove(s->items + new_end, s->items + old_end, (KLL_USED(s) - old_end) * sizeof(double));
    for (uint32_t j = 0; j <= h; j++)
        s->end[j] -= pairs;
    return true;
}

/* Compacts the lowest full level until the sketch is under its capacity again. There always is
 * a full level while used ≥ max_size (the lengths cannot all be below their widths), and each
 * compaction removes at least KLL_MIN_WIDTH/2 items. */
static void kll_compress(cx_kll_t *s) {
    while (KLL_USED(s) >= s->max_size) {
        uint32_t h = 0;
        while (h < s->nlevels && KLL_LEN(s, h) < kll_width(s->k, s->nlevels - 1 - h))
            h++;
        if (h == s->nlevels || !kll_compact(s, h)) return; /* cannot happen; see above */
    }
}

cx_err_t cx_kll_add(cx_kll_t *s, double v) {
    if (!s || !isfinite(v) || s->n == UINT64_MAX) return CX_ERR_INVALID;
    if (kll_reserve(s, KLL_USED(s) + 1) != CX_OK) return CX_ERR_NOMEM;
    s->items[s->end[0]++] = v;
    if (s->n++ == 0) {
        s->min = s->max = v;
    } else {
        if (v < s->min) s->min = v;
        if (v > s->max) s->max = v;
    }
    if (KLL_USED(s) >= s->max_size) kll_compress(s);
    return CX_OK;
}

cx_err_t cx_kll_merge(cx_kll_t *dst, const cx_kll_t *src) {
    if (!dst || !src || dst == src || dst->k != src->k) return CX_ERR_INVALID;
    if (src->n == 0) return CX_OK;
    if (dst->n > UINT64_MAX - src->n) return CX_ERR_INVALID;
    uint32_t H = dst->nlevels > src->nlevels ? dst->nlevels : src->nlevels;
    size_t total = KLL_USED(dst) + KLL_USED(src);
    size_t max_size = kll_max_size(dst->k, H);
    size_t cap = total > max_size ? total : max_size;
    double *items = malloc(cap * sizeof *items);
    if (!items) return CX_ERR_NOMEM;
    /* rebuild the layout top-down: each level is dst's items, then src's */
    uint32_t end[KLL_MAX_LEVELS + 1];
    uint32_t pos = 0;
    for (uint32_t h = H; h-- > 0;) {
        if (h < dst->nlevels) {
            memcpy(items + pos, dst->items + KLL_START(dst, h), KLL_LEN(dst, h) * sizeof *items);
            pos += KLL_LEN(dst, h);
        }
        if (h < src->nlevels) {
            memcpy(items + pos, src->items + KLL_START(src, h), KLL_LEN(src, h) * sizeof *items);
            pos += KLL_LEN(src, h);
        }
        end[h] = pos;
    }
    end[H] = 0;
    free(dst->items);
    dst->items = items;
    dst->cap = cap;
    dst->nlevels = H;
    dst->max_size = max_size;
    memcpy(dst->end, end, (H + 1) * sizeof *end);
    if (dst->n == 0) {
        dst->min = src->min;
        dst->max = src->max;
    } else {
        if (src->min < dst->min) dst->min = src->min;
        if (src->max > dst->max) dst->max = src->max;
    }
    dst->n += src->n;
    kll_compress(dst);
    return CX_OK;
}

uint64_t cx_kll_count(const cx_kll_t *s) {
    return s ? s->n : 0;
}
uint32_t cx_kll_k(const cx_kll_t *s) {
    return s ? s->k : 0;
}
size_t cx_kll_retained(const cx_kll_t *s) {
    return s ? KLL_USED(s) : 0;
}
uint32_t cx_kll_levels(const cx_kll_t *s) {
    return s ? s->nlevels : 0;
}
double cx_kll_min(const cx_kll_t *s) {
    return s && s->n ? s->min : NAN;
}
double cx_kll_max(const cx_kll_t *s) {
    return s && s->n ? s->max : NAN;
}
size_t cx_kll_bytes(const cx_kll_t *s) {
    return s ? sizeof *s + s->cap * sizeof(double) : 0;
}

double cx_kll_rank(const cx_kll_t *s, double v) {
    if (!s || s->n == 0 || isnan(v)) return NAN;
    if (v < s->min) return 0.0;
    if (v >= s->max) return 1.0;
    uint64_t below = 0;
    for (uint32_t h = 0; h < s->nlevels; h++) {
        uint64_t c = 0;
        for (uint32_t i = KLL_START(s, h); i < s->end[h]; i++)
            c += s->items[i] <= v;
        below += c << h;
    }
    return (double)below / (double)s->n;
}

typedef struct kll_weighted {
    double v;
    uint64_t w; /* weight, then cumulative weight once sorted */
} kll_weighted_t;

static int cmp_weighted(const void *a, const void *b) {
    double x = ((const kll_weighted_t *)a)->v, y = ((const kll_weighted_t *)b)->v;
    return (x > y) - (x < y);
}

cx_err_t cx_kll_quantiles(const cx_kll_t *s, const double *qs, size_t nq, double *out) {
    if (!s || (nq && (!qs || !out))) return CX_ERR_INVALID;
    if (nq == 0) return CX_OK;
    if (s->n == 0) {
        for (size_t i = 0; i < nq; i++)
            out[i] = NAN;
        return CX_OK;
    }
    size_t r = KLL_USED(s);
    kll_weighted_t *view = malloc(r * sizeof *view);
    if (!view) {
        for (size_t i = 0; i < nq; i++)
            out[i] = NAN;
        return CX_ERR_NOMEM;
    }
    for (uint32_t h = 0; h < s->nlevels; h++)
        for (uint32_t i = KLL_START(s, h); i < s->end[h]; i++)
            view[i] = (kll_weighted_t){s->items[i], UINT64_C(1) << h};
    qsort(view, r, sizeof *view, cmp_weighted);
    uint64_t cum = 0;
    for (size_t i = 0; i < r; i++)
        view[i].w = cum += view[i].w;
    for (size_t j = 0; j < nq; j++) {
        double q = qs[j];
        if (!(q >= 0.0 && q <= 1.0)) {
            out[j] = NAN;
        } else if (q == 0.0) {
            out[j] = s->min;
        } else if (q == 1.0) {
            out[j] = s->max;
        } else {
            /* smallest i with cumulative weight ≥ q·n */
            double target = q * (double)s->n;
            size_t lo = 0, hi = r - 1;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if ((double)view[mid].w >= target)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            out[j] = view[lo].v;
        }
    }
    free(view);
    return CX_OK;
}

double cx_kll_quantile(const cx_kll_t *s, double q) {
    double v = NAN;
    if (cx_kll_quantiles(s, &q, 1, &v) != CX_OK) return NAN;
    return v;
}

cx_err_t cx_kll_serialize(const cx_kll_t *s, cx_buf_t *out) {
    if (!s || !out) return CX_ERR_INVALID;
    size_t start = out->len;
    cx_err_t e = cx_buf_append(out, "KL\x01", 3);
    if (e == CX_OK) e = cx_buf_put_uvarint(out, s->k);
    if (e == CX_OK) e = cx_buf_put_uvarint(out, s->n);
    if (e == CX_OK && s->n > 0) {
        e = cx_buf_put_uvarint(out, s->nlevels);
        if (e == CX_OK) e = put_u64le(out, s->rng);
        if (e == CX_OK) e = put_double(out, s->min);
        if (e == CX_OK) e = put_double(out, s->max);
        if (e == CX_OK) e = cx_buf_reserve(out, KLL_USED(s) * 8 + 4 * (size_t)s->nlevels);
        for (uint32_t h = s->nlevels; e == CX_OK && h-- > 0;) {
            e = cx_buf_put_uvarint(out, KLL_LEN(s, h));
            for (uint32_t i = KLL_START(s, h); e == CX_OK && i < s->end[h]; i++)
                e = put_double(out, s->items[i]);
        }
    }
    if (e == CX_OK) e = put_crc(out, start);
    return e;
}

cx_err_t cx_kll_deserialize(const void *data, size_t len, cx_kll_t **out, char *errstr, size_t errstr_size) {
    if (!out) return CX_ERR_INVALID;
    *out = NULL;
    size_t end;
    cx_err_t e = check_frame(data, len, 'K', 'L', "kll", &end, errstr, errstr_size);
    if (e != CX_OK) return e;
    reader_t r = {data, 3, end, true};
    cx_kll_t *s = NULL;
    uint64_t k = rd_uvarint(&r), n = rd_uvarint(&r);
    if (!r.ok || k < CX_KLL_MIN_K || k > CX_KLL_MAX_K) {
        cx_seterr(errstr, errstr_size, "kll: bad header (k)");
        e = CX_ERR_INVALID;
        goto done;
    }
    s = cx_kll_new((uint32_t)k);
    if (!s) {
        e = CX_ERR_NOMEM;
        goto done;
    }
    if (n > 0) {
        uint64_t nlevels = rd_uvarint(&r);
        const uint8_t *fixed = rd_bytes(&r, 24);
        if (!r.ok || nlevels < 1 || nlevels > KLL_MAX_LEVELS) {
            cx_seterr(errstr, errstr_size, "kll: bad header (levels)");
            e = CX_ERR_INVALID;
            goto done;
        }
        s->rng = get_u64le(fixed);
        s->min = get_double(fixed + 8);
        s->max = get_double(fixed + 16);
        if (!isfinite(s->min) || !isfinite(s->max) || s->min > s->max) {
            cx_seterr(errstr, errstr_size, "kll: bad min/max");
            e = CX_ERR_INVALID;
            goto done;
        }
        s->nlevels = (uint32_t)nlevels;
        s->max_size = kll_max_size(s->k, s->nlevels);
        /* Every operation leaves a sketch below its capacity; that bounds what we accept, and
         * so the memory a hostile input can claim. */
        if (kll_reserve(s, s->max_size) != CX_OK) {
            e = CX_ERR_NOMEM;
            goto done;
        }
        uint64_t weight = 0;
        bool overflow = false;
        uint32_t pos = 0;
        s->end[s->nlevels] = 0;
        for (uint32_t h = s->nlevels; h-- > 0;) {
            uint64_t cnt = rd_uvarint(&r);
            if (!r.ok || cnt >= s->max_size - pos) {
                cx_seterr(errstr, errstr_size, "kll: level %u size out of bounds", h);
                e = CX_ERR_INVALID;
                goto done;
            }
            const uint8_t *items = rd_bytes(&r, (size_t)cnt * 8);
            if (!items) break;
            for (uint32_t i = 0; i < cnt; i++) {
                double v = get_double(items + 8 * (size_t)i);
                if (!isfinite(v) || v < s->min || v > s->max) {
                    cx_seterr(errstr, errstr_size, "kll: item outside [min, max]");
                    e = CX_ERR_INVALID;
                    goto done;
                }
                s->items[pos++] = v;
            }
            s->end[h] = pos;
            uint64_t w;
            overflow |= __builtin_mul_overflow(cnt, UINT64_C(1) << h, &w);
            overflow |= __builtin_add_overflow(weight, w, &weight);
        }
        if (r.ok && (overflow || weight != n)) {
            cx_seterr(errstr, errstr_size, "kll: level weights do not add up to n");
            e = CX_ERR_INVALID;
            goto done;
        }
        s->n = n;
    }
    if (!r.ok || r.pos != end) {
        cx_seterr(errstr, errstr_size, r.ok ? "kll: trailing bytes" : "kll: truncated");
        e = CX_ERR_INVALID;
        goto done;
    }
    *out = s;
    s = NULL;
done:
    cx_kll_destroy(s);
    return e;
}

/* ------------------------------------------------------------------------------------------ */
/* Space-Saving                                                                                */
/* ------------------------------------------------------------------------------------------ */

typedef struct topk_slot {
    uint64_t count;
    uint64_t err;
    uint64_t hash;
    uint8_t len;
    char term[CX_TOPK_TERM_MAX];
} topk_slot_t;

struct cx_topk {
    uint32_t m;
    uint32_t size; /* slots [0, size) are live */
    uint64_t total;
    topk_slot_t *slots; /* m */
    uint32_t *heap;     /* m slot indices; root = the counter to evict */
    uint32_t *heap_pos; /* m: slot index → heap position */
    int32_t *table;     /* tmask + 1 entries: slot index or -1 */
    uint32_t tmask;
};

static uint64_t term_hash(const char *s, size_t n) {
    uint64_t h = UINT64_C(0xcbf29ce484222325); /* FNV-1a, then a final mix for the low bits */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * UINT64_C(0x100000001b3);
    h ^= h >> 29;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    return h ^ (h >> 32);
}

static int term_cmp(const char *a, size_t alen, const char *b, size_t blen) {
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c) return c;
    return (alen > blen) - (alen < blen);
}

/* The total "top" order: count desc, then term asc. Negative when a ranks before b. */
static int rank_cmp(uint64_t ca, const char *ta, size_t la, uint64_t cb, const char *tb, size_t lb) {
    if (ca != cb) return ca > cb ? -1 : 1;
    return term_cmp(ta, la, tb, lb);
}

static int slot_rank_cmp(const topk_slot_t *a, const topk_slot_t *b) {
    return rank_cmp(a->count, a->term, a->len, b->count, b->term, b->len);
}

/* Heap order: the slot ranked last sits at the root. */
static bool heap_above(const cx_topk_t *t, uint32_t a, uint32_t b) {
    return slot_rank_cmp(&t->slots[a], &t->slots[b]) > 0;
}

static void heap_set(cx_topk_t *t, uint32_t pos, uint32_t idx) {
    t->heap[pos] = idx;
    t->heap_pos[idx] = pos;
}

static void heap_up(cx_topk_t *t, uint32_t pos) {
    uint32_t idx = t->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!heap_above(t, idx, t->heap[parent])) break;
        heap_set(t, pos, t->heap[parent]);
        pos = parent;
    }
    heap_set(t, pos, idx);
}

static void heap_down(cx_topk_t *t, uint32_t pos) {
    uint32_t idx = t->heap[pos];
    for (;;) {
        uint32_t c = 2 * pos + 1;
        if (c >= t->size) break;
        if (c + 1 < t->size && heap_above(t, t->heap[c + 1], t->heap[c])) c++;
        if (!heap_above(t, t->heap[c], idx)) break;
        heap_set(t, pos, t->heap[c]);
        pos = c;
    }
    heap_set(t, pos, idx);
}

/* Table position holding term, or the empty position where it would go. */
static uint32_t table_find(const cx_topk_t *t, const char *term, size_t len, uint64_t hash, bool *found) {
    uint32_t i = (uint32_t)hash & t->tmask;
    for (;;) {
        int32_t idx = t->table[i];
        if (idx < 0) {
            *found = false;
            return i;
        }
        const topk_slot_t *sl = &t->slots[idx];
        if (sl->hash == hash && sl->len == len && memcmp(sl->term, term, len) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & t->tmask;
    }
}

/* Linear-probing deletion by backward shift: no tombstones, so probes stay short. */
static void table_delete(cx_topk_t *t, uint32_t i) {
    uint32_t j = i;
    t->table[i] = -1;
    for (;;) {
        j = (j + 1) & t->tmask;
        int32_t idx = t->table[j];
        if (idx < 0) return;
        uint32_t home = (uint32_t)t->slots[idx].hash & t->tmask;
        /* leave it if its home lies cyclically in (i, j] */
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (stays) continue;
        t->table[i] = idx;
        t->table[j] = -1;
        i = j;
    }
}

cx_topk_t *cx_topk_new(uint32_t m) {
    if (m == 0 || m > CX_TOPK_MAX_M) return NULL;
    cx_topk_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    uint32_t tsize = 1;
    while (tsize < 2 * m)
        tsize <<= 1; /* load factor ≤ 1/2 */
    t->m = m;
    t->tmask = tsize - 1;
    t->slots = malloc((size_t)m * sizeof *t->slots);
    t->heap = malloc((size_t)m * sizeof *t->heap);
    t->heap_pos = malloc((size_t)m * sizeof *t->heap_pos);
    t->table = malloc((size_t)tsize * sizeof *t->table);
    if (!t->slots || !t->heap || !t->heap_pos || !t->table) {
        cx_topk_destroy(t);
        return NULL;
    }
    cx_topk_reset(t);
    return t;
}

void cx_topk_destroy(cx_topk_t *t) {
    if (!t) return;
    free(t->slots);
    free(t->heap);
    free(t->heap_pos);
    free(t->table);
    free(t);
}

void cx_topk_reset(cx_topk_t *t) {
    t->size = 0;
    t->total = 0;
    memset(t->table, 0xff, ((size_t)t->tmask + 1) * sizeof *t->table);
}

/* Monitors a term not yet present (size < m), at table position pos. */
static void topk_insert(cx_topk_t *t, uint32_t pos, const char *term, size_t len, uint64_t hash, uint64_t count,
                        uint64_t err) {
    uint32_t idx = t->size++;
    topk_slot_t *sl = &t->slots[idx];
    sl->count = count;
    sl->err = err;
    sl->hash = hash;
    sl->len = (uint8_t)len;
    memcpy(sl->term, term, len);
    t->table[pos] = (int32_t)idx;
    heap_set(t, idx, idx);
    heap_up(t, idx);
}

cx_err_t cx_topk_add(cx_topk_t *t, const char *term, size_t len, uint64_t count) {
    if (!t || !term || len == 0 || len > CX_TOPK_TERM_MAX) return CX_ERR_INVALID;
    if (count == 0) return CX_OK;
    t->total = sat_add(t->total, count);
    uint64_t hash = term_hash(term, len);
    bool found;
    uint32_t pos = table_find(t, term, len, hash, &found);
    if (found) {
        uint32_t idx = (uint32_t)t->table[pos];
        t->slots[idx].count = sat_add(t->slots[idx].count, count);
        heap_down(t, t->heap_pos[idx]); /* ranks higher now: moves away from the root */
        return CX_OK;
    }
    if (t->size < t->m) {
        topk_insert(t, pos, term, len, hash, count, 0);
        return CX_OK;
    }
    /* Evict the root: the newcomer inherits its count as the possible unseen weight. */
    uint32_t idx = t->heap[0];
    topk_slot_t *sl = &t->slots[idx];
    bool f2;
    table_delete(t, table_find(t, sl->term, sl->len, sl->hash, &f2));
    uint64_t floor_count = sl->count;
    sl->count = sat_add(floor_count, count);
    sl->err = floor_count;
    sl->hash = hash;
    sl->len = (uint8_t)len;
    memcpy(sl->term, term, len);
    t->table[table_find(t, term, len, hash, &f2)] = (int32_t)idx;
    heap_down(t, 0);
    return CX_OK;
}

/* The count any unmonitored term may at most have: the smallest counter once full, else 0. */
static uint64_t topk_floor(const cx_topk_t *t) {
    return t->size == t->m ? t->slots[t->heap[0]].count : 0;
}

static int cmp_slot_rank(const void *a, const void *b) {
    return slot_rank_cmp(a, b);
}

cx_err_t cx_topk_merge(cx_topk_t *dst, const cx_topk_t *src) {
    if (!dst || !src || dst == src) return CX_ERR_INVALID;
    if (src->size == 0) {
        dst->total = sat_add(dst->total, src->total);
        return CX_OK;
    }
    size_t ncand = (size_t)dst->size + src->size;
    topk_slot_t *cand = malloc(ncand * sizeof *cand);
    if (!cand) return CX_ERR_NOMEM;
    uint64_t floor_dst = topk_floor(dst), floor_src = topk_floor(src);
    size_t c = 0;
    for (uint32_t i = 0; i < dst->size; i++) {
        topk_slot_t sl = dst->slots[i];
        bool found;
        uint32_t pos = table_find(src, sl.term, sl.len, sl.hash, &found);
        const topk_slot_t *o = found ? &src->slots[src->table[pos]] : NULL;
        sl.count = sat_add(sl.count, o ? o->count : floor_src);
        sl.err = sat_add(sl.err, o ? o->err : floor_src);
        cand[c++] = sl;
    }
    for (uint32_t i = 0; i < src->size; i++) {
        topk_slot_t sl = src->slots[i];
        bool found;
        table_find(dst, sl.term, sl.len, sl.hash, &found);
        if (found) continue;
        sl.count = sat_add(sl.count, floor_dst);
        sl.err = sat_add(sl.err, floor_dst);
        cand[c++] = sl;
    }
    qsort(cand, c, sizeof *cand, cmp_slot_rank);
    uint64_t total = sat_add(dst->total, src->total);
    cx_topk_reset(dst);
    dst->total = total;
    for (size_t i = 0; i < c && i < dst->m; i++) {
        bool found;
        uint32_t pos = table_find(dst, cand[i].term, cand[i].len, cand[i].hash, &found);
        topk_insert(dst, pos, cand[i].term, cand[i].len, cand[i].hash, cand[i].count, cand[i].err);
    }
    free(cand);
    return CX_OK;
}

static int item_rank_cmp(const cx_topk_item_t *a, const cx_topk_item_t *b) {
    return rank_cmp(a->count, a->term, a->len, b->count, b->term, b->len);
}

static int cmp_item_rank(const void *a, const void *b) {
    return item_rank_cmp(a, b);
}

static void item_from_slot(cx_topk_item_t *it, const topk_slot_t *sl) {
    memcpy(it->term, sl->term, sl->len);
    it->term[sl->len] = '\0';
    it->len = sl->len;
    it->count = sl->count;
    it->error = sl->err;
}

/* Restores the "worst at the root" heap property of out[0..n) below pos. */
static void item_heap_down(cx_topk_item_t *out, size_t n, size_t pos) {
    for (;;) {
        size_t c = 2 * pos + 1;
        if (c >= n) return;
        if (c + 1 < n && item_rank_cmp(&out[c + 1], &out[c]) > 0) c++;
        if (item_rank_cmp(&out[c], &out[pos]) <= 0) return;
        cx_topk_item_t tmp = out[pos];
        out[pos] = out[c];
        out[c] = tmp;
        pos = c;
    }
}

size_t cx_topk_top(const cx_topk_t *t, size_t n, cx_topk_item_t *out) {
    if (!t || !out || n == 0) return 0;
    size_t r = n < t->size ? n : t->size;
    /* Select the r best into a heap whose root is the worst kept, then sort it. */
    for (size_t i = 0; i < r; i++)
        item_from_slot(&out[i], &t->slots[i]);
    for (size_t i = r / 2; i-- > 0;)
        item_heap_down(out, r, i);
    for (size_t i = r; i < t->size; i++) {
        const topk_slot_t *sl = &t->slots[i];
        if (rank_cmp(sl->count, sl->term, sl->len, out[0].count, out[0].term, out[0].len) < 0) {
            item_from_slot(&out[0], sl);
            item_heap_down(out, r, 0);
        }
    }
    qsort(out, r, sizeof *out, cmp_item_rank);
    return r;
}

uint64_t cx_topk_total(const cx_topk_t *t) {
    return t ? t->total : 0;
}
uint32_t cx_topk_capacity(const cx_topk_t *t) {
    return t ? t->m : 0;
}
size_t cx_topk_size(const cx_topk_t *t) {
    return t ? t->size : 0;
}

size_t cx_topk_bytes(const cx_topk_t *t) {
    if (!t) return 0;
    return sizeof *t + (size_t)t->m * (sizeof *t->slots + sizeof *t->heap + sizeof *t->heap_pos) +
           ((size_t)t->tmask + 1) * sizeof *t->table;
}

cx_err_t cx_topk_serialize(const cx_topk_t *t, cx_buf_t *out) {
    if (!t || !out) return CX_ERR_INVALID;
    topk_slot_t *sorted = malloc(((size_t)t->size + 1) * sizeof *sorted);
    if (!sorted) return CX_ERR_NOMEM;
    if (t->size) memcpy(sorted, t->slots, (size_t)t->size * sizeof *sorted);
    qsort(sorted, t->size, sizeof *sorted, cmp_slot_rank);
    size_t start = out->len;
    cx_err_t e = cx_buf_append(out, "TK\x01", 3);
    if (e == CX_OK) e = cx_buf_put_uvarint(out, t->m);
    if (e == CX_OK) e = cx_buf_put_uvarint(out, t->total);
    if (e == CX_OK) e = cx_buf_put_uvarint(out, t->size);
    for (uint32_t i = 0; e == CX_OK && i < t->size; i++) {
        e = cx_buf_put_uvarint(out, sorted[i].len);
        if (e == CX_OK) e = cx_buf_append(out, sorted[i].term, sorted[i].len);
        if (e == CX_OK) e = cx_buf_put_uvarint(out, sorted[i].count);
        if (e == CX_OK) e = cx_buf_put_uvarint(out, sorted[i].err);
    }
    if (e == CX_OK) e = put_crc(out, start);
    free(sorted);
    return e;
}

cx_err_t cx_topk_deserialize(const void *data, size_t len, cx_topk_t **out, char *errstr, size_t errstr_size) {
    if (!out) return CX_ERR_INVALID;
    *out = NULL;
    size_t end;
    cx_err_t e = check_frame(data, len, 'T', 'K', "topk", &end, errstr, errstr_size);
    if (e != CX_OK) return e;
    reader_t r = {data, 3, end, true};
    cx_topk_t *t = NULL;
    uint64_t m = rd_uvarint(&r), total = rd_uvarint(&r), size = rd_uvarint(&r);
    if (!r.ok || m == 0 || m > CX_TOPK_MAX_M || size > m) {
        cx_seterr(errstr, errstr_size, "topk: bad header");
        e = CX_ERR_INVALID;
        goto done;
    }
    t = cx_topk_new((uint32_t)m);
    if (!t) {
        e = CX_ERR_NOMEM;
        goto done;
    }
    t->total = total;
    const char *prev = NULL;
    size_t prev_len = 0;
    uint64_t prev_count = 0;
    for (uint64_t i = 0; i < size; i++) {
        uint64_t tl = rd_uvarint(&r);
        const char *term = (const char *)rd_bytes(&r, r.ok && tl <= CX_TOPK_TERM_MAX ? tl : 0);
        uint64_t count = rd_uvarint(&r), err = rd_uvarint(&r);
        if (!r.ok) break;
        if (tl == 0 || tl > CX_TOPK_TERM_MAX || count == 0 || err > count || count - err > total) {
            cx_seterr(errstr, errstr_size, "topk: bad item %" PRIu64, i);
            e = CX_ERR_INVALID;
            goto done;
        }
        /* canonical order, which also rules out duplicates */
        if (prev && rank_cmp(prev_count, prev, prev_len, count, term, tl) >= 0) {
            cx_seterr(errstr, errstr_size, "topk: items out of order at %" PRIu64, i);
            e = CX_ERR_INVALID;
            goto done;
        }
        bool found;
        uint64_t hash = term_hash(term, tl);
        uint32_t pos = table_find(t, term, tl, hash, &found);
        if (found) {
            cx_seterr(errstr, errstr_size, "topk: duplicate term at %" PRIu64, i);
            e = CX_ERR_INVALID;
            goto done;
        }
        topk_insert(t, pos, term, tl, hash, count, err);
        prev = term;
        prev_len = tl;
        prev_count = count;
    }
    if (!r.ok || r.pos != end) {
        cx_seterr(errstr, errstr_size, r.ok ? "topk: trailing bytes" : "topk: truncated");
        e = CX_ERR_INVALID;
        goto done;
    }
    *out = t;
    t = NULL;
done:
    cx_topk_destroy(t);
    return e;
}
