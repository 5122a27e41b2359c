/*
 * campaigns.c — open sends, attribution with CampaignResponse records, per-partition KPI partials
 * (state and cx.partials) and the merged CampaignKpi records. See campaigns.h for the contract and
 * docs/campaigns.md for the rules in prose.
 */
#include "campaigns.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attribution.h"

typedef struct kpi_entry {
    char id[CX_ID_MAX + 1];
    cx_kpi_counts_t *pc; /* per partition, [0, n_pc) */
    uint8_t *dirty;      /* changed since the last flush (owned partitions) */
    uint32_t n_pc;
    bool changed;     /* since the last KPI record */
    bool closed;      /* final record produced */
    int64_t next_due; /* earliest merged watermark for the next interval record */
} kpi_entry_t;

struct cx_campaigns {
    const cx_config_t *cfg;
    cx_campaign_lookup_fn lookup;
    void *lookup_opaque;
    cx_sink_t sink;
    cx_store_t *store;
    kpi_entry_t *ent;
    size_t n_ent, cap_ent;
    uint32_t *hash; /* open addressing: entry index + 1, 0 empty */
    size_t hash_cap;
    int32_t partitions; /* 0: max assigned + 1 */
    int32_t max_assigned;
    bool owned[CX_PARTS_MAX];
    int64_t wm[CX_PARTS_MAX];
    int64_t wm_published[CX_PARTS_MAX];
    int64_t wm_assigned[CX_PARTS_MAX]; /* the watermark restored at the last assignment */
    bool wm_announce[CX_PARTS_MAX];    /* assigned since the last flush: publish wm_assigned first */
    int64_t min_due;                   /* no KPI record is due before the merged watermark reaches this */
    int64_t last_tick_w;               /* merged watermark at the last tick */
    cx_buf_t kbuf, vbuf, rest;
};

/* ---------- the table of campaigns ---------- */

static uint64_t id_hash(const char *id) {
    return cx_hash64(id, strlen(id));
}

static cx_err_t rehash(cx_campaigns_t *k, size_t cap) {
    uint32_t *h = calloc(cap, sizeof *h);
    if (!h) return CX_ERR_NOMEM;
    for (size_t i = 0; i < k->n_ent; i++) {
        size_t j = id_hash(k->ent[i].id) & (cap - 1);
        while (h[j])
            j = (j + 1) & (cap - 1);
        h[j] = (uint32_t)(i + 1);
    }
    free(k->hash);
    k->hash = h;
    k->hash_cap = cap;
    return CX_OK;
}

static kpi_entry_t *entry_find(cx_campaigns_t *k, const char *id) {
    if (!k->hash_cap) return NULL;
    for (size_t j = id_hash(id) & (k->hash_cap - 1); k->hash[j]; j = (j + 1) & (k->hash_cap - 1))
        if (strcmp(k->ent[k->hash[j] - 1].id, id) == 0) return &k->ent[k->hash[j] - 1];
    return NULL;
}

/* The campaign's counts in `part`, creating the entry and growing its partition array. */
static cx_kpi_counts_t *counts_get(cx_campaigns_t *k, const char *id, uint16_t part, kpi_entry_t **out) {
    kpi_entry_t *e = entry_find(k, id);
    if (!e) {
        if (strlen(id) > CX_ID_MAX) return NULL;
        if ((k->n_ent + 1) * 2 > k->hash_cap && rehash(k, k->hash_cap ? k->hash_cap * 2 : 64) != CX_OK) return NULL;
        if (k->n_ent == k->cap_ent) {
            size_t cap = k->cap_ent ? k->cap_ent * 2 : 32;
            kpi_entry_t *a = realloc(k->ent, cap * sizeof *a);
            if (!a) return NULL;
            k->ent = a;
            k->cap_ent = cap;
        }
        e = &k->ent[k->n_ent];
        memset(e, 0, sizeof *e);
        snprintf(e->id, sizeof e->id, "%s", id);
        size_t j = id_hash(id) & (k->hash_cap - 1);
        while (k->hash[j])
            j = (j + 1) & (k->hash_cap - 1);
        k->hash[j] = (uint32_t)(++k->n_ent);
    }
    if (part >= e->n_pc) {
        uint32_t n = (uint32_t)part + 1;
        cx_kpi_counts_t *pc = realloc(e->pc, n * sizeof *pc);
        if (!pc) return NULL;
        e->pc = pc;
        uint8_t *d = realloc(e->dirty, n);
        if (!d) return NULL;
        e->dirty = d;
        memset(e->pc + e->n_pc, 0, (n - e->n_pc) * sizeof *pc);
        memset(e->dirty + e->n_pc, 0, n - e->n_pc);
        e->n_pc = n;
    }
    *out = e;
    return &e->pc[part];
}

/* Records that the counts of (e, part) changed. */
static void touched(cx_campaigns_t *k, kpi_entry_t *e, uint16_t part) {
    e->dirty[part] = 1;
    e->changed = true;
    if (e->next_due < k->min_due) k->min_due = e->next_due;
}

static int32_t partitions(const cx_campaigns_t *k) {
    return k->partitions > 0 ? k->partitions : k->max_assigned + 1;
}

/* ---------- lifecycle ---------- */

cx_campaigns_t *cx_campaigns_new(const cx_config_t *cfg, cx_campaign_lookup_fn lookup, void *lookup_opaque,
                                 const cx_sink_t *sink, char *errstr, size_t errstr_size) {
    cx_campaigns_t *k = calloc(1, sizeof *k);
    if (!k) {
        cx_seterr(errstr, errstr_size, "out of memory creating the campaign table");
        return NULL;
    }
    k->cfg = cfg;
    k->lookup = lookup;
    k->lookup_opaque = lookup_opaque;
    if (sink) k->sink = *sink;
    k->max_assigned = -1;
    for (int i = 0; i < CX_PARTS_MAX; i++)
        k->wm[i] = k->wm_published[i] = INT64_MIN;
    k->min_due = INT64_MIN;
    k->last_tick_w = INT64_MIN;
    return k;
}

void cx_campaigns_destroy(cx_campaigns_t *k) {
    if (!k) return;
    for (size_t i = 0; i < k->n_ent; i++) {
        free(k->ent[i].pc);
        free(k->ent[i].dirty);
    }
    free(k->ent);
    free(k->hash);
    cx_buf_free(&k->kbuf);
    cx_buf_free(&k->vbuf);
    cx_buf_free(&k->rest);
    free(k);
}

void cx_campaigns_set_partitions(cx_campaigns_t *k, int32_t n) {
    k->partitions = n > 0 && n <= CX_PARTS_MAX ? n : 0;
    k->min_due = INT64_MIN;
}

typedef struct load_ctx {
    cx_campaigns_t *k;
    uint16_t part;
    cx_err_t rc;
} load_ctx_t;

static bool load_cb(void *opaque, const void *key, size_t kl, const void *v, size_t vl) {
    load_ctx_t *c = opaque;
    const char *kk = key;
    if (kl < 5 || kl - 4 > CX_ID_MAX || kk[3] != 'c') return true;
    char id[CX_ID_MAX + 1];
    memcpy(id, kk + 4, kl - 4);
    id[kl - 4] = 0;
    cx_kpi_counts_t cnt;
    if (!cx_kpi_counts_decode(v, vl, &cnt)) {
        c->rc = CX_ERR_STATE;
        return false;
    }
    kpi_entry_t *e;
    cx_kpi_counts_t *dst = counts_get(c->k, id, c->part, &e);
    if (!dst) {
        c->rc = CX_ERR_NOMEM;
        return false;
    }
    *dst = cnt;
    e->changed = true;
    return true;
}

/* Replaces the in-memory counts of `part` by the stored ones. */
static cx_err_t load_part(cx_campaigns_t *k, uint16_t part, char *errstr, size_t errstr_size) {
    for (size_t i = 0; i < k->n_ent; i++)
        if (part < k->ent[i].n_pc) {
            memset(&k->ent[i].pc[part], 0, sizeof k->ent[i].pc[part]);
            k->ent[i].dirty[part] = 0;
        }
    k->min_due = INT64_MIN;
    if (!k->store) return CX_OK;
    load_ctx_t c = {k, part, CX_OK};
    cx_err_t rc = cx_store_scan_tag(k->store, part, CX_KEY_AGG, load_cb, &c, errstr, errstr_size);
    if (rc == CX_OK && c.rc != CX_OK) {
        cx_seterr(errstr, errstr_size, "partition %u: stored campaign partials: %s", part, cx_err2str(c.rc));
        rc = c.rc;
    }
    return rc;
}

cx_err_t cx_campaigns_assign(cx_campaigns_t *k, cx_store_t *store, uint16_t part, int64_t wm_ms, char *errstr,
                             size_t errstr_size) {
    if (part >= CX_PARTS_MAX) return CX_ERR_INVALID;
    k->store = store;
    k->owned[part] = true;
    k->wm[part] = k->wm_assigned[part] = wm_ms;
    k->wm_announce[part] = true;
    if ((int32_t)part > k->max_assigned) k->max_assigned = part;
    /* ownership changed: the next tick re-evaluates every campaign, even at an unchanged merged
     * watermark (this partition may own a campaign that is already due to close) */
    k->last_tick_w = INT64_MIN;
    return load_part(k, part, errstr, errstr_size);
}

void cx_campaigns_revoke(cx_campaigns_t *k, uint16_t part) {
    if (part >= CX_PARTS_MAX) return;
    k->owned[part] = false;
    char err[128];
    if (load_part(k, part, err, sizeof err) != CX_OK)
        cx_log(CX_LOG_WARN, "campaigns", "revoke part=%u reload=failed err=\"%s\"", part, err);
}

void cx_campaigns_watermark(cx_campaigns_t *k, uint16_t part, int64_t wm_ms) {
    if (part < CX_PARTS_MAX && wm_ms > k->wm[part]) k->wm[part] = wm_ms;
}

void cx_campaigns_campaign_changed(cx_campaigns_t *k) {
    k->min_due = INT64_MIN;
}

/* ---------- one customer's sends ---------- */

static void contribute(cx_kpi_counts_t *c, const cx_open_send_t *s, int64_t sign) {
    unsigned g = s->group < CX_GROUP__COUNT ? s->group : CX_GROUP_TEST;
    c->sent[g] += sign;
    if (s->responded & CX_SEND_RESPONDED) c->resp_any[g] += sign;
    if (s->responded & CX_SEND_HARD) c->resp_hard[g] += sign;
}

/* The campaign type became known: fix the contacts recorded with CX_CT_OTHER meanwhile. */
static cx_err_t fix_contact_types(cx_profile_t *pr, const cx_campaign_t *camp) {
    if (camp->type == CX_CT_OTHER) return CX_OK;
    for (unsigned i = 0; i < pr->n_contacts; i++) {
        cx_pcontact_t *c = &pr->contacts[i];
        if (c->campaign_type != CX_CT_OTHER || !cx_sid_eq(&c->campaign_id, camp->campaign_id)) continue;
        c->campaign_type = camp->type;
        cx_pcontact_t *latest = &pr->latest_by_type[camp->type];
        if (!(pr->has_latest_by_type & (1u << camp->type)) || latest->ts_ms <= c->ts_ms) {
            cx_err_t rc = cx_pcontact_copy(latest, c);
            if (rc != CX_OK) return rc;
        }
        pr->has_latest_by_type |= (uint8_t)(1u << camp->type);
    }
    return CX_OK;
}

/* Counts waiting sends whose campaign has arrived; closes them if their window already ended. */
static cx_err_t resolve_waiting(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, int64_t now) {
    for (unsigned i = 0; i < pr->n_sends; i++) {
        cx_open_send_t *s = &pr->sends[i];
        if (!(s->responded & CX_SEND_WAITING)) continue;
        const cx_campaign_t *camp = k->lookup(k->lookup_opaque, cx_sid_str(&s->campaign_id));
        if (!camp) continue;
        kpi_entry_t *e;
        cx_kpi_counts_t *c = counts_get(k, cx_sid_str(&s->campaign_id), part, &e);
        if (!c) return CX_ERR_NOMEM;
        s->responded &= (uint8_t)~CX_SEND_WAITING;
        s->end_ts_ms = cx_attr_window_due(s->ts_ms, camp->observation_days);
        if (s->end_ts_ms > c->max_end_ms) c->max_end_ms = s->end_ts_ms;
        contribute(c, s, +1);
        touched(k, e, part);
        if (s->group == CX_GROUP_TEST) {
            cx_err_t rc = fix_contact_types(pr, camp);
            if (rc != CX_OK) return rc;
            if (camp->type == CX_CT_NEWSLETTER) pr->newsletter_recipient = true;
        }
        if (s->end_ts_ms <= now) {
            s->responded |= CX_SEND_CLOSED;
            s->end_ts_ms = 0;
        }
    }
    return CX_OK;
}

static void remove_send(cx_profile_t *pr, unsigned i) {
    cx_open_send_clear(&pr->sends[i]);
    memmove(&pr->sends[i], &pr->sends[i + 1], (pr->n_sends - i - 1) * sizeof pr->sends[0]);
    pr->n_sends--;
    memset(&pr->sends[pr->n_sends], 0, sizeof pr->sends[0]); /* moved down: the slot holds no ids now */
}

/* A slot for a new send: a free one, else the oldest closed, else the oldest waiting, else the open
 * send whose window ends first (its counts stay; it only stops being attributable). */
static unsigned alloc_send(cx_profile_t *pr) {
    if (pr->n_sends < CX_OPEN_SENDS_MAX) return pr->n_sends++;
    int best = -1, best_rank = 3;
    for (unsigned i = 0; i < pr->n_sends; i++) {
        const cx_open_send_t *s = &pr->sends[i];
        int rank = (s->responded & CX_SEND_CLOSED) ? 0 : (s->responded & CX_SEND_WAITING) ? 1 : 2;
        int64_t key = rank == 2 ? s->end_ts_ms : s->ts_ms;
        if (best < 0 || rank < best_rank ||
            (rank == best_rank && key < (best_rank == 2 ? pr->sends[best].end_ts_ms : pr->sends[best].ts_ms))) {
            best = (int)i;
            best_rank = rank;
        }
    }
    return (unsigned)best;
}

cx_err_t cx_campaigns_send(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, const cx_event_t *ev) {
    const cx_email_send_t *es = &ev->u.email_send;
    /* room for one more send in the lazily allocated block, before any pointer into it is taken */
    cx_err_t rc = cx_profile_camp_reserve(pr, 0, pr->n_sends + 1u);
    if (rc == CX_OK) rc = resolve_waiting(k, part, pr, ev->ts_ms);
    if (rc != CX_OK) return rc;
    kpi_entry_t *e;
    cx_kpi_counts_t *c = counts_get(k, es->campaign_id, part, &e);
    if (!c) return CX_ERR_NOMEM;
    cx_open_send_t *s = NULL;
    for (unsigned i = 0; i < pr->n_sends && !s; i++)
        if (cx_sid_eq(&pr->sends[i].campaign_id, es->campaign_id)) s = &pr->sends[i];
    if (s) {
        /* a repeated send restarts the window; the latest send decides the group */
        if (!(s->responded & CX_SEND_WAITING)) contribute(c, s, -1);
    } else {
        s = &pr->sends[alloc_send(pr)];
        cx_open_send_clear(s);
        if ((rc = cx_sid_set(&s->campaign_id, es->campaign_id)) != CX_OK) return rc;
    }
    if ((rc = cx_sid_set(&s->send_event_id, ev->event_id)) != CX_OK) return rc;
    s->has_code = ev->has_campaign_code;
    if ((rc = s->has_code ? cx_sid_set(&s->code, ev->campaign_code) : (cx_sid_free(&s->code), CX_OK)) != CX_OK)
        return rc;
    s->ts_ms = ev->ts_ms;
    s->group = (uint8_t)es->group;
    s->responded &= CX_SEND_RESPONDED | CX_SEND_HARD;
    const cx_campaign_t *camp = k->lookup(k->lookup_opaque, es->campaign_id);
    if (camp) {
        s->end_ts_ms = cx_attr_window_due(ev->ts_ms, camp->observation_days);
        contribute(c, s, +1);
        if (es->group == CX_GROUP_TEST && camp->type == CX_CT_NEWSLETTER) pr->newsletter_recipient = true;
    } else {
        int32_t wait = k->cfg->campaign_wait_days > 0 ? k->cfg->campaign_wait_days : 0;
        s->responded |= CX_SEND_WAITING;
        s->end_ts_ms = ev->ts_ms + (int64_t)wait * CX_DAY_MS + 1;
    }
    if (s->end_ts_ms > c->max_end_ms) c->max_end_ms = s->end_ts_ms;
    if (camp)
        touched(k, e, part);
    else
        e->dirty[part] = 1; /* only the wait horizon changed: persist it, no KPI record */
    return CX_OK;
}

cx_err_t cx_campaigns_transaction(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, const cx_event_t *ev,
                                  bool first_tx, char *attributed_campaign_id) {
    attributed_campaign_id[0] = 0;
    cx_err_t rc = resolve_waiting(k, part, pr, ev->ts_ms);
    if (rc != CX_OK || pr->n_sends == 0) return rc;
    const cx_campaign_t *camps[CX_OPEN_SENDS_MAX] = {0};
    for (unsigned i = 0; i < pr->n_sends; i++) {
        const cx_open_send_t *s = &pr->sends[i];
        if (!(s->responded & (CX_SEND_WAITING | CX_SEND_CLOSED)) &&
            cx_attr_in_window(s->ts_ms, s->end_ts_ms, ev->ts_ms))
            camps[i] = k->lookup(k->lookup_opaque, cx_sid_str(&s->campaign_id));
    }
    bool hard;
    int idx = cx_attr_choose(pr->sends, camps, pr->n_sends, ev, &hard);
    if (idx < 0) return CX_OK;
    cx_open_send_t *s = &pr->sends[idx];
    kpi_entry_t *e;
    const char *campaign_id = cx_sid_str(&s->campaign_id);
    cx_kpi_counts_t *c = counts_get(k, campaign_id, part, &e);
    if (!c) return CX_ERR_NOMEM;
    unsigned g = s->group < CX_GROUP__COUNT ? s->group : CX_GROUP_TEST;
    bool purchase = ev->type == CX_EV_PURCHASE;
    int64_t amount = purchase ? ev->u.purchase.amount_minor : 0;
    if (!(s->responded & CX_SEND_RESPONDED)) c->resp_any[g]++;
    if (hard && !(s->responded & CX_SEND_HARD)) c->resp_hard[g]++;
    if (g == CX_GROUP_TEST) {
        if (purchase) {
            c->purchases++;
            c->turnover_minor += amount;
        } else {
            c->retrievals++;
        }
    }
    s->responded |= (uint8_t)(CX_SEND_RESPONDED | (hard ? CX_SEND_HARD : 0));
    touched(k, e, part);
    size_t id_len = strlen(campaign_id);
    memcpy(attributed_campaign_id, campaign_id, id_len + 1);
    if (first_tx && !pr->has_acquisition) {
        cx_err_t rc = cx_sid_setn(&pr->acquisition_campaign_id, campaign_id, id_len);
        if (rc != CX_OK) return rc;
        pr->has_acquisition = true;
    }
    cx_response_t r;
    memset(&r, 0, sizeof r);
    cx_sid_get(&pr->customer_id, r.customer_id, sizeof r.customer_id);
    r.ts_ms = ev->ts_ms;
    memcpy(r.response_id, ev->event_id, sizeof r.response_id);
    memcpy(r.campaign_id, campaign_id, id_len + 1);
    cx_sid_get(&s->send_event_id, r.send_event_id, sizeof r.send_event_id);
    memcpy(r.response_event_id, ev->event_id, sizeof r.response_event_id);
    r.response_type = hard ? CX_RESP_HARD : CX_RESP_SOFT;
    r.action = purchase ? CX_RESP_ACTION_PURCHASE : CX_RESP_ACTION_PLAY;
    r.amount_minor = amount;
    r.group = (cx_group_t)g;
    r.latency_ms = ev->ts_ms - s->ts_ms;
    return k->sink.emit ? k->sink.emit(k->sink.opaque, CX_REC_RESPONSE, r.customer_id, &r) : CX_OK;
}

cx_err_t cx_campaigns_timer(cx_campaigns_t *k, uint16_t part, cx_profile_t *pr, int64_t due) {
    cx_err_t rc = resolve_waiting(k, part, pr, due);
    if (rc != CX_OK) return rc;
    for (unsigned i = pr->n_sends; i-- > 0;) {
        cx_open_send_t *s = &pr->sends[i];
        if (!s->end_ts_ms || s->end_ts_ms > due) continue;
        if (s->responded & CX_SEND_WAITING) {
            cx_log(CX_LOG_DEBUG, "campaigns", "send_dropped campaign=%s send=%s reason=campaign_unknown",
                   cx_sid_str(&s->campaign_id), cx_sid_str(&s->send_event_id));
            remove_send(pr, i);
        } else {
            s->responded |= CX_SEND_CLOSED; /* a non-responder is final now */
            s->end_ts_ms = 0;
        }
    }
    return CX_OK;
}

/* ---------- merged KPIs ---------- */

static void merged(const kpi_entry_t *e, cx_kpi_counts_t *out) {
    memset(out, 0, sizeof *out);
    for (uint32_t i = 0; i < e->n_pc; i++)
        cx_kpi_counts_merge(out, &e->pc[i]);
}

static int64_t merged_watermark(const cx_campaigns_t *k) {
    int32_t n = partitions(k);
    if (n <= 0) return INT64_MIN;
    int64_t w = INT64_MAX;
    for (int32_t i = 0; i < n; i++)
        if (k->wm[i] < w) w = k->wm[i];
    return w;
}

/* The instant the campaign closes: past end_ts and every window end; INT64_MAX while unknown. */
static int64_t close_time(const cx_campaigns_t *k, const kpi_entry_t *e, const cx_kpi_counts_t *m) {
    const cx_campaign_t *camp = k->lookup(k->lookup_opaque, e->id);
    if (!camp) return INT64_MAX;
    int64_t t = camp->end_ts_ms + 1;
    return m->max_end_ms > t ? m->max_end_ms : t;
}

static cx_err_t emit_kpi(cx_campaigns_t *k, kpi_entry_t *e, const cx_kpi_counts_t *m, int64_t ts, bool closed) {
    cx_kpi_t r;
    memset(&r, 0, sizeof r);
    memcpy(r.campaign_id, e->id, sizeof r.campaign_id);
    r.ts_ms = ts;
    r.as_of_ts_ms = ts;
    cx_kpi_compute(m, &r);
    r.closed = closed;
    return k->sink.emit ? k->sink.emit(k->sink.opaque, CX_REC_KPI, e->id, &r) : CX_OK;
}

cx_err_t cx_campaigns_tick(cx_campaigns_t *k) {
    /* Only when the merged watermark rises: then every event with ts < w is applied and none at w
     * yet, so a record "as of w" covers exactly the events before w (one partition, in order). */
    int64_t w = merged_watermark(k);
    if (w == INT64_MIN || w <= k->last_tick_w) return CX_OK;
    k->last_tick_w = w;
    if (w < k->min_due) return CX_OK;
    int32_t n = partitions(k);
    int64_t interval = k->cfg->kpi_interval_ms > 0 ? k->cfg->kpi_interval_ms : 3600000;
    int64_t next_min = INT64_MAX;
    for (size_t i = 0; i < k->n_ent; i++) {
        kpi_entry_t *e = &k->ent[i];
        if (e->closed) continue;
        int32_t owner = cx_murmur2_partition(e->id, strlen(e->id), n);
        if (owner < 0 || owner >= CX_PARTS_MAX || !k->owned[owner]) continue;
        cx_kpi_counts_t m;
        merged(e, &m);
        int64_t ct = close_time(k, e, &m);
        cx_err_t rc;
        if (w >= ct) {
            if ((rc = emit_kpi(k, e, &m, ct, true)) != CX_OK) return rc;
            e->closed = true;
            e->changed = false;
            continue;
        }
        if (e->changed && w >= e->next_due) {
            if ((rc = emit_kpi(k, e, &m, w, false)) != CX_OK) return rc;
            e->changed = false;
            e->next_due = (w / interval + 1) * interval;
        }
        if (ct < next_min) next_min = ct;
        if (e->changed && e->next_due < next_min) next_min = e->next_due;
    }
    k->min_due = next_min;
    return CX_OK;
}

bool cx_campaigns_kpi(cx_campaigns_t *k, const char *campaign_id, cx_kpi_t *out) {
    kpi_entry_t *e = entry_find(k, campaign_id);
    if (!e) return false;
    cx_kpi_counts_t m;
    merged(e, &m);
    memset(out, 0, sizeof *out);
    memcpy(out->campaign_id, e->id, sizeof out->campaign_id);
    int64_t w = merged_watermark(k);
    out->ts_ms = out->as_of_ts_ms = w == INT64_MIN ? 0 : w;
    cx_kpi_compute(&m, out);
    /* closed also where this instance is not the owner that produced the final record */
    out->closed = e->closed || (w != INT64_MIN && w >= close_time(k, e, &m));
    return true;
}

static int by_id(const void *a, const void *b) {
    return strcmp((*(const kpi_entry_t *const *)a)->id, (*(const kpi_entry_t *const *)b)->id);
}

cx_err_t cx_campaigns_each_kpi(cx_campaigns_t *k, cx_campaigns_kpi_fn fn, void *opaque) {
    if (!k->n_ent) return CX_OK;
    const kpi_entry_t **idx = malloc(k->n_ent * sizeof *idx);
    if (!idx) return CX_ERR_NOMEM;
    for (size_t i = 0; i < k->n_ent; i++)
        idx[i] = &k->ent[i];
    qsort(idx, k->n_ent, sizeof *idx, by_id);
    cx_err_t rc = CX_OK;
    cx_kpi_t kpi;
    for (size_t i = 0; i < k->n_ent && rc == CX_OK; i++)
        if (cx_campaigns_kpi(k, idx[i]->id, &kpi)) rc = fn(opaque, &kpi);
    free(idx);
    return rc;
}

/* ---------- partials: state and cx.partials ---------- */

static cx_err_t publish(cx_campaigns_t *k, const char *key) {
    cx_partial_rec_t rec = {key, k->vbuf.data, k->vbuf.len};
    return k->sink.emit ? k->sink.emit(k->sink.opaque, CX_REC_PARTIAL, key, &rec) : CX_OK;
}

static cx_err_t publish_wm(cx_campaigns_t *k, int p, int64_t wm) {
    char key[32];
    cx_buf_reset(&k->vbuf);
    cx_err_t rc = cx_buf_appendf(&k->vbuf, "{\"watermark\":%" PRId64 "}", wm);
    if (rc != CX_OK) return rc;
    snprintf(key, sizeof key, "wm::%d", p);
    return publish(k, key);
}

/* Order matters to the readers, who pair each partition's latest counts with its latest watermark:
 * a partition's counts go out before the watermark they reach, and a partition taken over announces
 * its restored watermark before its first counts (cx_campaigns_assign). */
cx_err_t cx_campaigns_flush(cx_campaigns_t *k, int part, cx_store_batch_t *batch) {
    char key[CX_ID_MAX + 32];
    cx_err_t rc = CX_OK;
    for (int p = 0; p < CX_PARTS_MAX && rc == CX_OK; p++) {
        if (!k->owned[p] || (part >= 0 && part != p) || !k->wm_announce[p]) continue;
        k->wm_announce[p] = false;
        k->wm_published[p] = INT64_MIN + 1; /* the watermark below publishes again once it differs */
        rc = publish_wm(k, p, k->wm_assigned[p]);
    }
    for (size_t i = 0; i < k->n_ent && rc == CX_OK; i++) {
        kpi_entry_t *e = &k->ent[i];
        for (uint32_t p = 0; p < e->n_pc && rc == CX_OK; p++) {
            if (!e->dirty[p] || !k->owned[p] || (part >= 0 && (uint32_t)part != p)) continue;
            e->dirty[p] = 0;
            cx_buf_reset(&k->rest);
            cx_buf_reset(&k->vbuf);
            if ((rc = cx_buf_putc(&k->rest, 'c')) != CX_OK) break;
            if ((rc = cx_buf_append(&k->rest, e->id, strlen(e->id))) != CX_OK) break;
            if ((rc = cx_store_key(&k->kbuf, (uint16_t)p, CX_KEY_AGG, k->rest.data, k->rest.len)) != CX_OK) break;
            if ((rc = cx_kpi_counts_encode(&e->pc[p], &k->vbuf)) != CX_OK) break;
            cx_store_batch_put(batch, k->kbuf.data, k->kbuf.len, k->vbuf.data, k->vbuf.len);
            cx_buf_reset(&k->vbuf);
            if ((rc = cx_kpi_counts_json(&e->pc[p], &k->vbuf)) != CX_OK) break;
            snprintf(key, sizeof key, "campaign:%s:%" PRIu32, e->id, p);
            rc = publish(k, key);
        }
    }
    for (int p = 0; p < CX_PARTS_MAX && rc == CX_OK; p++) {
        if (!k->owned[p] || (part >= 0 && part != p) || k->wm[p] == k->wm_published[p]) continue;
        k->wm_published[p] = k->wm[p];
        rc = publish_wm(k, p, k->wm[p]);
    }
    return rc;
}

cx_err_t cx_campaigns_apply_partial(cx_campaigns_t *k, const char *key, size_t klen, const void *value, size_t vlen) {
    const char *kind, *id;
    size_t kind_len, id_len;
    int32_t part;
    if (!value) return CX_OK;
    if (!cx_partial_key_parse(key, klen, &kind, &kind_len, &id, &id_len, &part) || part >= CX_PARTS_MAX)
        return CX_ERR_INVALID;
    if (k->owned[part]) return CX_OK;
    if (kind_len == 2 && memcmp(kind, "wm", 2) == 0) {
        const char *v = value;
        char num[32];
        const char *colon = memchr(v, ':', vlen);
        if (!colon) return CX_ERR_INVALID;
        size_t nl = (size_t)(v + vlen - colon - 1);
        if (nl >= sizeof num) return CX_ERR_INVALID;
        memcpy(num, colon + 1, nl);
        num[nl] = 0;
        char *end;
        long long w = strtoll(num, &end, 10);
        if (end == num || (*end && *end != '}')) return CX_ERR_INVALID;
        k->wm[part] = w; /* the latest, as for the counts: it goes back when a new owner announces */
        return CX_OK;
    }
    if (kind_len != 8 || memcmp(kind, "campaign", 8) != 0) return CX_OK; /* another module's kind */
    if (id_len == 0 || id_len > CX_ID_MAX) return CX_ERR_INVALID;
    char cid[CX_ID_MAX + 1];
    memcpy(cid, id, id_len);
    cid[id_len] = 0;
    cx_kpi_counts_t cnt;
    if (!cx_kpi_counts_from_json(value, vlen, &cnt)) return CX_ERR_INVALID;
    kpi_entry_t *e;
    cx_kpi_counts_t *c = counts_get(k, cid, (uint16_t)part, &e);
    if (!c) return CX_ERR_NOMEM;
    *c = cnt;
    e->dirty[part] = 0;
    e->changed = true;
    if (e->next_due < k->min_due) k->min_due = e->next_due;
    return CX_OK;
}
