/*
 * voc.c — voice-of-customer and CX-economics aggregates (voc.h). Each owned partition keeps
 * absolute counts: NPS per segment moved by the customer's own contribution (the profile says
 * what it contributes: nps_last while nps_due_ms != 0, voc_monetary_minor, voc_clv_minor), NPS per
 * touchpoint in a ring of day buckets, comment terms in Space-Saving summaries. They are written in
 * the flush batch next to the profiles they agree with, so a restart finds them consistent.
 */
#include "voc.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attribution.h"
#include "pipeline.h"
#include "themes.h"

#define VOC_BLOB_VERSION 1

typedef struct tp_day {
    int32_t day; /* INT32_MIN: empty */
    cx_nps_counts_t c;
} tp_day_t;

typedef struct vseg {
    cx_nps_counts_t nps;
    int64_t monetary, clv, triggers, sends, responders;
} vseg_t;

typedef struct vpart {
    bool owned;
    bool dirty; /* the "vs" blob */
    int64_t wm;
    vseg_t seg[CX_SEGMENTS_MAX];
    uint32_t n_tp;
    char tp[CX_VOC_TOUCHPOINTS_MAX][CX_SHORT_MAX + 1];
    tp_day_t *ring[CX_VOC_TOUCHPOINTS_MAX];      /* ring_n day buckets, slot = day mod ring_n */
    cx_topk_t *th[2][CX_VOC_TOUCHPOINTS_MAX][2]; /* [by][index][category]; segments < CX_SEGMENTS_MAX */
    bool th_dirty[2][CX_VOC_TOUCHPOINTS_MAX][2];
} vpart_t;

struct cx_voc {
    const cx_config_t *cfg;
    int32_t window_days;
    int32_t ring_n; /* window + lead: a survey may be ahead of the watermark by the lateness */
    vpart_t *parts[CX_PARTS_MAX];
    cx_buf_t key, rest, val;
};

_Static_assert(CX_SEGMENTS_MAX <= CX_VOC_TOUCHPOINTS_MAX, "summary table sized by the larger");

/* ---------- small helpers ---------- */

static size_t n_segments(const cx_voc_t *v) {
    return v->cfg->n_segments < CX_SEGMENTS_MAX ? v->cfg->n_segments : CX_SEGMENTS_MAX;
}

static bool seg_ok(const cx_voc_t *v, int seg) {
    return seg >= 0 && (size_t)seg < n_segments(v);
}

static vpart_t *owned(const cx_voc_t *v, uint16_t part) {
    return part < CX_PARTS_MAX && v->parts[part] && v->parts[part]->owned ? v->parts[part] : NULL;
}

static int32_t wm_day(const vpart_t *P, int32_t fallback) {
    return P->wm == INT64_MIN ? fallback : (int32_t)cx_day(P->wm);
}

static tp_day_t *ring_slot(const cx_voc_t *v, tp_day_t *ring, int32_t day) {
    int32_t i = day % v->ring_n;
    return &ring[i < 0 ? i + v->ring_n : i];
}

static void part_reset(vpart_t *P) {
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < CX_VOC_TOUCHPOINTS_MAX; i++)
            for (int c = 0; c < 2; c++)
                cx_topk_destroy(P->th[b][i][c]);
    for (int i = 0; i < CX_VOC_TOUCHPOINTS_MAX; i++)
        free(P->ring[i]);
    memset(P, 0, sizeof *P);
    P->wm = INT64_MIN;
}

/* Index of touchpoint `name`, added when new (pooled under "other" when the table is full);
 * -1 on no memory. */
static int tp_index(const cx_voc_t *v, vpart_t *P, const char *name) {
    for (uint32_t i = 0; i < P->n_tp; i++)
        if (strcmp(P->tp[i], name) == 0) return (int)i;
    if (P->n_tp >= CX_VOC_TOUCHPOINTS_MAX - 1 && strcmp(name, CX_VOC_OTHER) != 0) return tp_index(v, P, CX_VOC_OTHER);
    if (P->n_tp >= CX_VOC_TOUCHPOINTS_MAX) return -1;
    tp_day_t *r = malloc((size_t)v->ring_n * sizeof *r);
    if (!r) return -1;
    for (int32_t i = 0; i < v->ring_n; i++)
        r[i] = (tp_day_t){INT32_MIN, CX_NPS_COUNTS_INIT};
    uint32_t i = P->n_tp++;
    snprintf(P->tp[i], sizeof P->tp[i], "%s", name);
    P->ring[i] = r;
    return (int)i;
}

static cx_topk_t *summary(vpart_t *P, int by, int idx, int cat) {
    cx_topk_t **t = &P->th[by][idx][cat];
    if (!*t) *t = cx_topk_new(CX_VOC_TOPK_M);
    return *t;
}

/* ---------- lifecycle ---------- */

cx_voc_t *cx_voc_new(const cx_config_t *cfg, char *errstr, size_t errstr_size) {
    cx_voc_t *v = calloc(1, sizeof *v);
    if (!v) {
        cx_seterr(errstr, errstr_size, "out of memory creating the voc aggregates");
        return NULL;
    }
    v->cfg = cfg;
    v->window_days = cfg->nps_window_days > 0 ? cfg->nps_window_days : 90;
    int64_t lead = cfg->watermark_lateness_ms > 0 ? cfg->watermark_lateness_ms / CX_DAY_MS + 1 : 0;
    if (lead > 3660) lead = 3660;
    v->ring_n = v->window_days + 1 + (int32_t)lead;
    return v;
}

void cx_voc_destroy(cx_voc_t *v) {
    if (!v) return;
    for (int i = 0; i < CX_PARTS_MAX; i++)
        if (v->parts[i]) {
            part_reset(v->parts[i]);
            free(v->parts[i]);
        }
    cx_buf_free(&v->key);
    cx_buf_free(&v->rest);
    cx_buf_free(&v->val);
    free(v);
}

/* ---------- the stored form ---------- */

/* "vs": version, wm, segments (count, then 8 numbers each), touchpoints (name, in-window days). */
static cx_err_t blob_encode(const cx_voc_t *v, const vpart_t *P, cx_buf_t *out) {
    cx_err_t e = cx_buf_put_uvarint(out, VOC_BLOB_VERSION);
    size_t ns = n_segments(v);
    if (!e) e = cx_buf_put_svarint(out, P->wm);
    if (!e) e = cx_buf_put_uvarint(out, ns);
    for (size_t s = 0; s < ns && !e; s++) {
        const vseg_t *g = &P->seg[s];
        int64_t f[8] = {g->nps.promoters, g->nps.passives, g->nps.detractors, g->monetary,
                        g->clv,           g->triggers,     g->sends,          g->responders};
        for (int i = 0; i < 8 && !e; i++)
            e = cx_buf_put_svarint(out, f[i]);
    }
    if (!e) e = cx_buf_put_uvarint(out, P->n_tp);
    for (uint32_t t = 0; t < P->n_tp && !e; t++) {
        size_t len = strlen(P->tp[t]);
        e = cx_buf_put_uvarint(out, len);
        if (!e) e = cx_buf_append(out, P->tp[t], len);
        uint64_t n = 0;
        for (int32_t i = 0; i < v->ring_n; i++)
            n += P->ring[t][i].day != INT32_MIN;
        if (!e) e = cx_buf_put_uvarint(out, n);
        for (int32_t i = 0; i < v->ring_n && !e; i++) {
            const tp_day_t *d = &P->ring[t][i];
            if (d->day == INT32_MIN) continue;
            e = cx_buf_put_svarint(out, d->day);
            if (!e) e = cx_buf_put_svarint(out, d->c.promoters);
            if (!e) e = cx_buf_put_svarint(out, d->c.passives);
            if (!e) e = cx_buf_put_svarint(out, d->c.detractors);
        }
    }
    return e;
}

typedef struct rd {
    const uint8_t *p;
    size_t n;
    bool bad;
} rd_t;

static int64_t rd_s(rd_t *r) {
    int64_t x = 0;
    size_t k = r->bad ? 0 : cx_get_svarint(r->p, r->n, &x);
    if (!k) r->bad = true;
    r->p += k;
    r->n -= k;
    return x;
}

static uint64_t rd_u(rd_t *r) {
    uint64_t x = 0;
    size_t k = r->bad ? 0 : cx_get_uvarint(r->p, r->n, &x);
    if (!k) r->bad = true;
    r->p += k;
    r->n -= k;
    return x;
}

static cx_err_t blob_decode(cx_voc_t *v, vpart_t *P, const uint8_t *b, size_t n) {
    rd_t r = {b, n, false};
    if (rd_u(&r) != VOC_BLOB_VERSION) return CX_ERR_STATE;
    P->wm = rd_s(&r);
    uint64_t ns = rd_u(&r);
    if (ns > CX_SEGMENTS_MAX) return CX_ERR_STATE;
    for (uint64_t s = 0; s < ns && !r.bad; s++) {
        int64_t f[8];
        for (int i = 0; i < 8; i++)
            f[i] = rd_s(&r);
        /* a changed segment map invalidates the per-segment figures (as the pipeline's counts) */
        if (ns != n_segments(v)) continue;
        P->seg[s] = (vseg_t){{f[0], f[1], f[2]}, f[3], f[4], f[5], f[6], f[7]};
    }
    uint64_t nt = rd_u(&r);
    if (nt > CX_VOC_TOUCHPOINTS_MAX) return CX_ERR_STATE;
    for (uint64_t t = 0; t < nt && !r.bad; t++) {
        uint64_t len = rd_u(&r);
        if (r.bad || len > CX_SHORT_MAX || len > r.n) return CX_ERR_STATE;
        char name[CX_SHORT_MAX + 1];
        memcpy(name, r.p, len);
        name[len] = 0;
        r.p += len;
        r.n -= len;
        int idx = tp_index(v, P, name);
        if (idx < 0) return CX_ERR_NOMEM;
        uint64_t nd = rd_u(&r);
        for (uint64_t i = 0; i < nd && !r.bad; i++) {
            int64_t day = rd_s(&r);
            cx_nps_counts_t c = {rd_s(&r), rd_s(&r), rd_s(&r)};
            if (day < INT32_MIN + 1 || day > INT32_MAX) r.bad = true;
            if (r.bad) break;
            tp_day_t *d = ring_slot(v, P->ring[idx], (int32_t)day);
            if (d->day == INT32_MIN || d->day < day) *d = (tp_day_t){(int32_t)day, c};
        }
    }
    return r.bad || r.n ? CX_ERR_STATE : CX_OK;
}

/* "vt" + 's'|'t' + 'd'|'p' + name -> cx_topk_serialize */
static cx_err_t sketch_rest(cx_buf_t *rest, int by, int cat, const char *name) {
    cx_buf_reset(rest);
    char h[4] = {'v', 't', by == CX_VOC_BY_SEGMENT ? 's' : 't', cat == CX_VOC_DETRACTORS ? 'd' : 'p'};
    cx_err_t e = cx_buf_append(rest, h, 4);
    return e ? e : cx_buf_append(rest, name, strlen(name));
}

typedef struct load_ctx {
    cx_voc_t *v;
    vpart_t *P;
    cx_err_t rc;
} load_ctx_t;

static bool load_cb(void *opaque, const void *key, size_t kl, const void *val, size_t vl) {
    load_ctx_t *c = opaque;
    const char *k = key;
    if (kl < 5 || k[3] != 'v') return true; /* another module's aggregate */
    if (k[4] == 's' && kl == 5) {
        c->rc = blob_decode(c->v, c->P, val, vl);
        return c->rc == CX_OK;
    }
    if (k[4] != 't' || kl < 8 || kl - 7 > CX_SHORT_MAX) return true;
    int by = k[5] == 's' ? CX_VOC_BY_SEGMENT : CX_VOC_BY_TOUCHPOINT, cat = k[6] == 'd' ? 0 : 1;
    char name[CX_SHORT_MAX + 1];
    memcpy(name, k + 7, kl - 7);
    name[kl - 7] = 0;
    int idx = -1;
    if (by == CX_VOC_BY_SEGMENT) {
        for (size_t s = 0; s < n_segments(c->v); s++)
            if (strcmp(c->v->cfg->segments[s].name, name) == 0) idx = (int)s;
        if (idx < 0) return true; /* a segment no longer configured */
    } else {
        if ((idx = tp_index(c->v, c->P, name)) < 0) {
            c->rc = CX_ERR_NOMEM;
            return false;
        }
    }
    cx_topk_t *t = NULL;
    char err[128];
    if (cx_topk_deserialize(val, vl, &t, err, sizeof err) != CX_OK) {
        c->rc = CX_ERR_STATE;
        return false;
    }
    cx_topk_destroy(c->P->th[by][idx][cat]);
    c->P->th[by][idx][cat] = t;
    return true;
}

cx_err_t cx_voc_assign(cx_voc_t *v, cx_store_t *store, uint16_t part, char *errstr, size_t errstr_size) {
    if (part >= CX_PARTS_MAX) return CX_ERR_INVALID;
    vpart_t *P = v->parts[part];
    if (!P && !(P = v->parts[part] = calloc(1, sizeof *P))) return CX_ERR_NOMEM;
    part_reset(P);
    P->owned = true;
    if (!store) return CX_OK;
    load_ctx_t c = {v, P, CX_OK};
    cx_err_t rc = cx_store_scan_tag(store, part, CX_KEY_AGG, load_cb, &c, errstr, errstr_size);
    if (rc == CX_OK && c.rc != CX_OK) {
        cx_seterr(errstr, errstr_size, "partition %u: stored voice-of-customer aggregates: %s", part, cx_err2str(c.rc));
        rc = c.rc;
    }
    return rc;
}

void cx_voc_revoke(cx_voc_t *v, uint16_t part) {
    if (part < CX_PARTS_MAX && v->parts[part]) part_reset(v->parts[part]);
}

void cx_voc_watermark(cx_voc_t *v, uint16_t part, int64_t wm_ms) {
    vpart_t *P = owned(v, part);
    if (P && wm_ms > P->wm) {
        P->wm = wm_ms;
        P->dirty = true;
    }
}

cx_err_t cx_voc_flush(cx_voc_t *v, int part, cx_store_batch_t *batch) {
    cx_err_t rc = CX_OK;
    for (int i = 0; i < CX_PARTS_MAX && rc == CX_OK; i++) {
        vpart_t *P = v->parts[i];
        if (!P || !P->owned || (part >= 0 && part != i)) continue;
        if (P->dirty) {
            cx_buf_reset(&v->val);
            if ((rc = blob_encode(v, P, &v->val)) != CX_OK) break;
            if ((rc = cx_store_key(&v->key, (uint16_t)i, CX_KEY_AGG, "vs", 2)) != CX_OK) break;
            cx_store_batch_put(batch, v->key.data, v->key.len, v->val.data, v->val.len);
            P->dirty = false;
        }
        for (int by = 0; by < 2 && rc == CX_OK; by++)
            for (int idx = 0; idx < CX_VOC_TOUCHPOINTS_MAX && rc == CX_OK; idx++)
                for (int cat = 0; cat < 2 && rc == CX_OK; cat++) {
                    if (!P->th_dirty[by][idx][cat] || !P->th[by][idx][cat]) continue;
                    const char *name = by == CX_VOC_BY_SEGMENT ? v->cfg->segments[idx].name : P->tp[idx];
                    cx_buf_reset(&v->val);
                    if ((rc = sketch_rest(&v->rest, by, cat, name)) != CX_OK) break;
                    if ((rc = cx_topk_serialize(P->th[by][idx][cat], &v->val)) != CX_OK) break;
                    if ((rc = cx_store_key(&v->key, (uint16_t)i, CX_KEY_AGG, v->rest.data, v->rest.len)) != CX_OK)
                        break;
                    cx_store_batch_put(batch, v->key.data, v->key.len, v->val.data, v->val.len);
                    P->th_dirty[by][idx][cat] = false;
                }
    }
    return rc;
}

/* ---------- events ---------- */

typedef struct term_ctx {
    cx_topk_t *t[2];
    cx_err_t rc;
} term_ctx_t;

static void on_term(void *opaque, const char *tok, size_t len) {
    term_ctx_t *c = opaque;
    for (int i = 0; i < 2; i++)
        if (c->t[i] && c->rc == CX_OK) c->rc = cx_topk_add(c->t[i], tok, len, 1);
}

static cx_err_t touchpoint_last(cx_profile_t *pr, const cx_survey_t *s, int64_t ts_ms) {
    unsigned n = pr->n_touchpoints, oldest = 0;
    for (unsigned i = 0; i < n; i++) {
        if (cx_sid_eq(&pr->touchpoints[i].touchpoint, s->touchpoint)) {
            if (ts_ms >= pr->touchpoints[i].ts_ms) {
                pr->touchpoints[i].score = (int8_t)s->score;
                pr->touchpoints[i].ts_ms = ts_ms;
            }
            return CX_OK;
        }
        if (pr->touchpoints[i].ts_ms < pr->touchpoints[oldest].ts_ms) oldest = i;
    }
    unsigned slot = n < CX_TOUCHPOINTS_KEPT ? n : oldest;
    if (n == CX_TOUCHPOINTS_KEPT && ts_ms < pr->touchpoints[oldest].ts_ms) return CX_OK; /* older than all kept */
    cx_err_t rc = cx_profile_touchpoints(pr);
    if (rc != CX_OK) return rc;
    rc = cx_sid_set(&pr->touchpoints[slot].touchpoint, s->touchpoint);
    if (rc != CX_OK) return rc;
    pr->touchpoints[slot].score = (int8_t)s->score;
    pr->touchpoints[slot].ts_ms = ts_ms;
    if (n < CX_TOUCHPOINTS_KEPT) pr->n_touchpoints = (uint8_t)(n + 1);
    return CX_OK;
}

cx_err_t cx_voc_survey(cx_voc_t *v, uint16_t part, cx_profile_t *pr, const cx_survey_t *s, int64_t ts_ms) {
    int cat = cx_nps_category(s->score);
    if (cat < 0) return CX_ERR_INVALID; /* the decoder refuses these; a guard */
    vpart_t *P = owned(v, part);
    int32_t d = (int32_t)cx_day(ts_ms);
    int64_t due = (int64_t)(d + v->window_days) * CX_DAY_MS;
    bool inside = P ? P->wm == INT64_MIN || P->wm < due : true;
    cx_err_t rc = touchpoint_last(pr, s, ts_ms);
    if (rc != CX_OK) return rc;
    pr->nps_count++;
    if (!pr->has_nps || ts_ms >= pr->nps_last_ts_ms) {
        if (P && pr->nps_due_ms && seg_ok(v, pr->segment)) cx_nps_add(&P->seg[pr->segment].nps, pr->nps_last, -1);
        pr->has_nps = true;
        pr->nps_last = (int8_t)s->score;
        pr->nps_last_ts_ms = ts_ms;
        pr->nps_due_ms = inside ? due : 0;
        if (P && inside && seg_ok(v, pr->segment)) cx_nps_add(&P->seg[pr->segment].nps, s->score, +1);
        if (P) P->dirty = true;
    }
    if (!P) return CX_OK;
    int tp = tp_index(v, P, s->touchpoint);
    if (tp < 0) return CX_ERR_NOMEM;
    if (inside) {
        tp_day_t *slot = ring_slot(v, P->ring[tp], d);
        if (slot->day < d) *slot = (tp_day_t){d, CX_NPS_COUNTS_INIT};
        if (slot->day == d) cx_nps_add(&slot->c, s->score, +1);
        P->dirty = true;
    }
    if (cat == CX_NPS_PASSIVE || !s->has_comment || !s->comment_len) return CX_OK;
    int k = cat == CX_NPS_DETRACTOR ? CX_VOC_DETRACTORS : CX_VOC_PROMOTERS;
    term_ctx_t c = {{summary(P, CX_VOC_BY_TOUCHPOINT, tp, k),
                     seg_ok(v, pr->segment) ? summary(P, CX_VOC_BY_SEGMENT, pr->segment, k) : NULL},
                    CX_OK};
    if (!c.t[0] || (seg_ok(v, pr->segment) && !c.t[1])) return CX_ERR_NOMEM;
    cx_themes_tokenize(s->comment, s->comment_len, on_term, &c);
    P->th_dirty[CX_VOC_BY_TOUCHPOINT][tp][k] = true;
    if (c.t[1]) P->th_dirty[CX_VOC_BY_SEGMENT][pr->segment][k] = true;
    return c.rc;
}

void cx_voc_rescored(cx_voc_t *v, uint16_t part, cx_profile_t *pr, int prev, int64_t monetary_minor,
                     int64_t clv_minor) {
    vpart_t *P = owned(v, part);
    int seg = pr->segment;
    if (P) {
        if (seg_ok(v, prev)) {
            P->seg[prev].monetary -= pr->voc_monetary_minor;
            P->seg[prev].clv -= pr->voc_clv_minor;
            if (seg != prev && pr->nps_due_ms) cx_nps_add(&P->seg[prev].nps, pr->nps_last, -1);
        }
        if (seg_ok(v, seg)) {
            P->seg[seg].monetary += monetary_minor;
            P->seg[seg].clv += clv_minor;
            if (seg != prev && pr->nps_due_ms) cx_nps_add(&P->seg[seg].nps, pr->nps_last, +1);
        }
        P->dirty = true;
    }
    pr->voc_monetary_minor = seg_ok(v, seg) ? monetary_minor : 0;
    pr->voc_clv_minor = seg_ok(v, seg) ? clv_minor : 0;
}

void cx_voc_nps_expire(cx_voc_t *v, uint16_t part, cx_profile_t *pr, int64_t due) {
    if (!pr->nps_due_ms || pr->nps_due_ms > due) return;
    vpart_t *P = owned(v, part);
    if (P && seg_ok(v, pr->segment)) {
        cx_nps_add(&P->seg[pr->segment].nps, pr->nps_last, -1);
        P->dirty = true;
    }
    pr->nps_due_ms = 0;
}

static void bump(cx_voc_t *v, uint16_t part, int seg, size_t field) {
    vpart_t *P = owned(v, part);
    if (!P || !seg_ok(v, seg)) return;
    (*(int64_t *)((char *)&P->seg[seg] + field))++;
    P->dirty = true;
}

void cx_voc_trigger(cx_voc_t *v, uint16_t part, int seg) {
    bump(v, part, seg, offsetof(vseg_t, triggers));
}
void cx_voc_windows_before(const cx_profile_t *pr, int64_t due, cx_voc_windows_t *w) {
    w->n = 0;
    for (unsigned i = 0; i < pr->n_sends && i < CX_OPEN_SENDS_MAX; i++) {
        const cx_open_send_t *s = &pr->sends[i];
        if (s->group != CX_GROUP_TEST || (s->responded & (CX_SEND_WAITING | CX_SEND_CLOSED)) || !s->end_ts_ms ||
            s->end_ts_ms > due)
            continue;
        cx_sid_get(&s->send_event_id, w->s[w->n].send_event_id, sizeof w->s[w->n].send_event_id);
        w->s[w->n].responded = s->responded & CX_SEND_RESPONDED;
        w->n++;
    }
}

void cx_voc_windows_after(cx_voc_t *v, uint16_t part, const cx_profile_t *pr, const cx_voc_windows_t *w) {
    for (unsigned i = 0; i < w->n; i++) {
        bool open = false; /* closed sends stay in the profile, flagged, until their slot is reused */
        for (unsigned k = 0; k < pr->n_sends && !open; k++)
            open = cx_sid_eq(&pr->sends[k].send_event_id, w->s[i].send_event_id) &&
                   !(pr->sends[k].responded & CX_SEND_CLOSED);
        if (open) continue;
        bump(v, part, pr->segment, offsetof(vseg_t, sends));
        if (w->s[i].responded) bump(v, part, pr->segment, offsetof(vseg_t, responders));
    }
}

/* ---------- queries ---------- */

void cx_voc_segments(const cx_voc_t *v, cx_voc_segment_t *out, size_t n) {
    memset(out, 0, n * sizeof *out);
    size_t ns = n_segments(v) < n ? n_segments(v) : n;
    for (int i = 0; i < CX_PARTS_MAX; i++) {
        const vpart_t *P = v->parts[i];
        if (!P || !P->owned) continue;
        for (size_t s = 0; s < ns; s++) {
            const vseg_t *g = &P->seg[s];
            cx_nps_counts_merge(&out[s].nps, &g->nps);
            out[s].monetary_minor_sum += g->monetary;
            out[s].clv_minor_sum += g->clv;
            out[s].triggers += g->triggers;
            out[s].sends_test += g->sends;
            out[s].responders += g->responders;
        }
    }
}

static int cmp_tp(const void *a, const void *b) {
    return strcmp(((const cx_voc_touchpoint_t *)a)->name, ((const cx_voc_touchpoint_t *)b)->name);
}

size_t cx_voc_touchpoints(const cx_voc_t *v, cx_voc_touchpoint_t *out, size_t cap) {
    size_t n = 0;
    for (int i = 0; i < CX_PARTS_MAX; i++) {
        const vpart_t *P = v->parts[i];
        if (!P || !P->owned) continue;
        for (uint32_t t = 0; t < P->n_tp; t++) {
            cx_nps_counts_t sum = CX_NPS_COUNTS_INIT;
            int32_t W = wm_day(P, INT32_MIN);
            for (int32_t k = 0; k < v->ring_n; k++) {
                const tp_day_t *d = &P->ring[t][k];
                if (d->day == INT32_MIN) continue;
                if (W != INT32_MIN && (int64_t)W - d->day >= v->window_days) continue;
                cx_nps_counts_merge(&sum, &d->c);
            }
            size_t j = 0;
            while (j < n && strcmp(out[j].name, P->tp[t]) != 0)
                j++;
            if (j == n) {
                if (n == cap) continue;
                memset(&out[n], 0, sizeof out[n]);
                memcpy(out[n].name, P->tp[t], sizeof out[n].name);
                n++;
            }
            cx_nps_counts_merge(&out[j].nps, &sum);
        }
    }
    qsort(out, n, sizeof *out, cmp_tp);
    return n;
}

cx_err_t cx_voc_themes(const cx_voc_t *v, int by, const char *name, int category, cx_topk_item_t *out, size_t n,
                       size_t *n_out, uint64_t *total, bool *found) {
    *n_out = 0;
    *total = 0;
    *found = false;
    int cat = category == CX_VOC_PROMOTERS ? 1 : 0;
    int seg = -1;
    if (by == CX_VOC_BY_SEGMENT) {
        for (size_t s = 0; s < n_segments(v); s++)
            if (strcmp(v->cfg->segments[s].name, name) == 0) seg = (int)s;
        if (seg < 0) return CX_OK;
    }
    *found = true;
    cx_topk_t *m = cx_topk_new(CX_VOC_TOPK_M);
    if (!m) return CX_ERR_NOMEM;
    cx_err_t rc = CX_OK;
    for (int i = 0; i < CX_PARTS_MAX && rc == CX_OK; i++) {
        const vpart_t *P = v->parts[i];
        if (!P || !P->owned) continue;
        int idx = seg;
        if (by != CX_VOC_BY_SEGMENT)
            for (uint32_t t = 0; t < P->n_tp; t++)
                if (strcmp(P->tp[t], name) == 0) idx = (int)t;
        if (idx >= 0 && P->th[by ? 1 : 0][idx][cat]) rc = cx_topk_merge(m, P->th[by ? 1 : 0][idx][cat]);
    }
    if (rc == CX_OK) {
        *n_out = cx_topk_top(m, n, out);
        *total = cx_topk_total(m);
    }
    cx_topk_destroy(m);
    return rc;
}
