/*
 * sketch.h — the two bounded, mergeable summaries behind cxstream's cross-partition figures:
 *
 *  - cx_kll_t: a KLL quantile sketch (Karnin, Lang & Liberty 2016) over finite doubles, used for
 *    the RFM quintile boundaries (recency days, frequency, monetary) under rfm.scoring=quantile.
 *    Each partition rebuilds its sketch from its customers at each rescoring (reset + adds), and
 *    publishes it absolute; every instance merges the latest sketch of every partition.
 *  - cx_topk_t: a Space-Saving heavy-hitters summary (Metwally, Agrawal & El Abbadi 2005) over
 *    short UTF-8 terms with weights, used for comment themes.
 *
 * Both are deterministic: the same sequence of operations on the same inputs gives the same
 * summary and the same serialized bytes (KLL draws its compaction coin flips from a seeded
 * generator whose state is part of the sketch), so a replay reproduces the live run.
 *
 * Ownership: cx_*_new() returns an object owned by the caller, freed with the matching
 * cx_*_destroy() (which accepts NULL). Merge reads src and never keeps a pointer to it.
 * Serialize appends to a caller-owned cx_buf_t. Deserialize reads the caller's bytes only during
 * the call and returns a new object the caller owns. Objects are not thread-safe: a caller that
 * shares one between threads serialises access itself (read-only queries may run concurrently).
 */
#ifndef CX_SKETCH_H
#define CX_SKETCH_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "cx.h"

/* ---------------------------------------------------------------------------------------------
 * KLL quantile sketch
 *
 * Accuracy: normalized rank error ε ≈ 2.3 / k^0.97 with 99% confidence for one query (the
 * Apache DataSketches calibration of the same algorithm): k = 200 gives ≈ 1.3%, k = 400 ≈ 0.7%.
 * The default, CX_KLL_DEFAULT_K = 400, meets the contract's 1% (DESIGN §6). The error is the
 * same after any sequence of merges of sketches built with the same k.
 *
 * Memory: at most about 3k + 8·levels retained doubles (levels ≈ log2(n/k) + 2), independent of
 * n in any practical sense; ≈ 10 KB per sketch at k = 400. Adds allocate only while the sketch
 * grows a new level (a few dozen times in a sketch's life), never in steady state; a reset keeps
 * the buffers, so rebuilding a sketch allocates nothing.
 * ------------------------------------------------------------------------------------------- */

#define CX_KLL_DEFAULT_K 400
#define CX_KLL_MIN_K     8
#define CX_KLL_MAX_K     65535

typedef struct cx_kll cx_kll_t;

/* k = 0 picks CX_KLL_DEFAULT_K. NULL on a k outside [CX_KLL_MIN_K, CX_KLL_MAX_K] or no memory. */
cx_kll_t *cx_kll_new(uint32_t k);
void cx_kll_destroy(cx_kll_t *s);

/* Adds one value. CX_ERR_INVALID (value ignored) for NaN or an infinity; CX_ERR_NOMEM if a new
 * level could not be allocated (the sketch stays valid and unchanged). */
cx_err_t cx_kll_add(cx_kll_t *s, double v);

/* dst becomes a sketch of the union of both inputs. CX_ERR_INVALID if the two k differ (dst
 * unchanged); CX_ERR_NOMEM (dst unchanged). dst == src is refused too. */
cx_err_t cx_kll_merge(cx_kll_t *dst, const cx_kll_t *src);

/* The value whose normalized rank is q: the smallest retained value x with (weight of values
 * ≤ x) ≥ q·n. q = 0 gives the exact minimum, q = 1 the exact maximum. NaN when the sketch is
 * empty, q is outside [0, 1], or memory for the sorted view could not be had. Queries sort a
 * copy of the retained items (O(r log r), r ≈ 3k): they are meant for rescoring and dashboards,
 * not for every event; use cx_kll_quantiles() for several q at once. */
double cx_kll_quantile(const cx_kll_t *s, double q);
cx_err_t cx_kll_quantiles(const cx_kll_t *s, const double *qs, size_t nq, double *out);

/* Estimated fraction of the added values that are ≤ v (0 for v below the minimum, 1 at or above
 * the maximum). NaN when empty. Allocation-free, O(r). */
double cx_kll_rank(const cx_kll_t *s, double v);

uint64_t cx_kll_count(const cx_kll_t *s); /* values added (including via merges) */
uint32_t cx_kll_k(const cx_kll_t *s);
size_t cx_kll_retained(const cx_kll_t *s); /* doubles held: the memory bound's measure */
uint32_t cx_kll_levels(const cx_kll_t *s);
double cx_kll_min(const cx_kll_t *s);   /* exact; NaN when empty */
size_t cx_kll_bytes(const cx_kll_t *s); /* heap bytes held, for the state-size metric */
double cx_kll_max(const cx_kll_t *s);   /* exact; NaN when empty */

/* Empties the sketch and restarts its coin flips, keeping k and the allocated buffers: a reset
 * sketch fed the same values produces the same bytes as a fresh one. */
void cx_kll_reset(cx_kll_t *s);

/* Compact, versioned encoding appended to out (see sketch.c for the layout: magic "KL", version,
 * varints, little-endian doubles, CRC-32 trailer). CX_ERR_NOMEM on growth failure (out may hold
 * a partial encoding past its previous length). */
cx_err_t cx_kll_serialize(const cx_kll_t *s, cx_buf_t *out);
/* Rejects (CX_ERR_INVALID, reason in errstr) anything that is not exactly one well-formed
 * sketch: bad magic/version/checksum, truncation, trailing bytes, non-finite or out-of-order
 * values, weights that do not add up to n, or a size beyond the k's bound. */
cx_err_t cx_kll_deserialize(const void *data, size_t len, cx_kll_t **out, char *errstr, size_t errstr_size);

/* ---------------------------------------------------------------------------------------------
 * Space-Saving heavy hitters
 *
 * m counters, fixed at creation. Each monitored term has an overestimate `count` and an
 * `error` such that count − error ≤ true count ≤ count. Every term whose true weight exceeds
 * n/m (n = total weight added) is monitored, and count − true ≤ error ≤ n/m. An add is
 * O(log m) (hash table + min-heap), allocation-free.
 *
 * Merge (Agarwal et al. 2012, "Mergeable summaries", Space-Saving form): for each term of
 * either summary, count = its count in A, or A's minimum counter when A is full and lacks it
 * (0 when A is not full), plus the same for B; error likewise adds the errors (or the filled-in
 * minimum). The m largest by (count desc, term asc) are kept. Bounds stay valid and the
 * guarantee stays error ≤ (nA + nB)/m, so any number of merges of partition summaries keeps it.
 *
 * Eviction of ties is deterministic: the counter that would be ranked last (smallest count,
 * then greatest term) is replaced.
 * ------------------------------------------------------------------------------------------- */

#define CX_TOPK_TERM_MAX 48
#define CX_TOPK_MAX_M    (1u << 20)

typedef struct cx_topk cx_topk_t;

typedef struct cx_topk_item {
    char term[CX_TOPK_TERM_MAX + 1]; /* NUL-terminated copy */
    size_t len;
    uint64_t count; /* overestimate of the true weight */
    uint64_t error; /* count − error ≤ true weight */
} cx_topk_item_t;

/* NULL when m is 0 or above CX_TOPK_MAX_M, or on no memory. */
cx_topk_t *cx_topk_new(uint32_t m);
void cx_topk_destroy(cx_topk_t *t);

/* Adds `count` occurrences of term. CX_ERR_INVALID for len 0 or len > CX_TOPK_TERM_MAX (the
 * caller truncates terms at a UTF-8 boundary). count 0 is a no-op. */
cx_err_t cx_topk_add(cx_topk_t *t, const char *term, size_t len, uint64_t count);

/* dst becomes a summary of both streams (see above). CX_ERR_NOMEM (dst unchanged); dst == src is
 * refused (CX_ERR_INVALID). The capacities may differ: dst keeps its own m. */
cx_err_t cx_topk_merge(cx_topk_t *dst, const cx_topk_t *src);

/* Writes up to n items, count desc then term asc, to out; returns how many were written.
 * Allocation-free. */
size_t cx_topk_top(const cx_topk_t *t, size_t n, cx_topk_item_t *out);

uint64_t cx_topk_total(const cx_topk_t *t);    /* total weight added (n) */
uint32_t cx_topk_capacity(const cx_topk_t *t); /* m */
size_t cx_topk_size(const cx_topk_t *t);       /* monitored terms, ≤ m */
size_t cx_topk_bytes(const cx_topk_t *t);      /* heap bytes held (fixed by m) */
void cx_topk_reset(cx_topk_t *t);

/* Versioned, canonical encoding (magic "TK"; items in top order; CRC-32 trailer). */
cx_err_t cx_topk_serialize(const cx_topk_t *t, cx_buf_t *out);
cx_err_t cx_topk_deserialize(const void *data, size_t len, cx_topk_t **out, char *errstr, size_t errstr_size);

#endif
