/*
 * test_profile.c — the customer record's compact encoding: every field survives a round trip at
 * its largest sizes, corrupt bytes (truncations, every single-byte change) are refused or decode to
 * something re-encodable without touching memory they should not, and a typical customer stays
 * small. Also buckets, dedup ring and the copy.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "profile.h"

static void fill_str(char *dst, size_t len, char c) {
    memset(dst, c, len);
    dst[len] = 0;
}

static void set_sid(cx_sid_t *s, const char *v) {
    cr_assert_eq(cx_sid_set(s, v), CX_OK, "%s", v);
}

static void fill_sid(cx_sid_t *s, size_t len, char c) {
    char v[CX_ID_MAX + 1];
    fill_str(v, len, c);
    set_sid(s, v);
}

/* A profile with every field set and every bounded array full, ids at their maximal length. */
static void make_max(cx_profile_t *p) {
    char id[CX_ID_MAX + 1];
    fill_str(id, CX_ID_MAX, 'c');
    cx_profile_init(p, id);
    p->has_tx = true;
    p->first_tx_ts_ms = INT64_C(1500000000123);
    p->last_tx_ts_ms = INT64_C(1700000000456);
    p->has_play = true;
    p->last_play_ts_ms = INT64_C(1700000000999);
    p->purchases_total = INT64_C(123456789012);
    p->revenue_total_minor = INT64_MAX / 2;
    p->plays_total = INT64_C(987654321);
    for (int i = 0; i < 400; i++) {
        cx_bucket_t *b = cx_profile_bucket(p, 19000 + 2 * i);
        cr_assert_not_null(b);
        b->tx = 1000000u + (uint32_t)i;
        b->play = i % 3 != 0;
        b->amount_minor = i % 2 ? -(int64_t)i * 1000 : (int64_t)i * 123456789;
    }
    p->r_score = 5;
    p->f_score = 4;
    p->m_score = 3;
    p->segment = 15;
    p->first_tx_day = 17361;
    p->last_tx_day = 19675;
    p->tx_days = 2000;
    p->first_day_revenue_minor = 4999;
    p->tx_revenue_minor = INT64_C(77777777777);
    for (int i = 0; i < CX_PLAY_DAYS_KEPT; i++)
        p->play_days[i] = 19600 + 7 * i;
    p->n_play_days = CX_PLAY_DAYS_KEPT;
    p->play_days_total = 4000000000u;
    p->last_trigger_ts_ms = INT64_C(1699999999999);
    for (int k = 0; k < CX_TRIG__COUNT; k++)
        p->last_trigger_due_ms[k] = INT64_C(1690000000000) + k;
    for (int i = 0; i < CX_GENRES_KEPT; i++) {
        char g[CX_SHORT_MAX + 1];
        fill_str(g, CX_SHORT_MAX, (char)('g' + i));
        cx_profile_set_genre(p, (unsigned)i, g);
        p->genre_count[i] = 4000000000u - (uint32_t)i;
    }
    p->has_nps = true;
    p->nps_last = 10;
    p->nps_last_ts_ms = INT64_C(1650000000000);
    p->nps_count = INT64_C(1) << 40;
    cr_assert_eq(cx_profile_touchpoints(p), CX_OK);
    for (int i = 0; i < CX_TOUCHPOINTS_KEPT; i++) {
        fill_sid(&p->touchpoints[i].touchpoint, CX_SHORT_MAX, (char)('t' + i));
        p->touchpoints[i].score = (int8_t)(i * 3);
        p->touchpoints[i].ts_ms = INT64_C(1600000000000) + i;
    }
    p->n_touchpoints = CX_TOUCHPOINTS_KEPT;
    p->has_acquisition = true;
    fill_sid(&p->acquisition_campaign_id, CX_ID_MAX, 'a');
    p->newsletter_recipient = true;
    for (int i = 0; i < CX_CONTACTS_KEPT; i++) {
        cx_pcontact_t *c = &p->contacts[i];
        fill_sid(&c->campaign_id, CX_ID_MAX, (char)('A' + i));
        c->campaign_type = (cx_campaign_type_t)(i % CX_CT__COUNT);
        c->channel = (cx_channel_t)(i % CX_CH__COUNT);
        c->group = (cx_group_t)(i % 2);
        c->ts_ms = INT64_C(1680000000000) + i;
    }
    p->n_contacts = CX_CONTACTS_KEPT;
    for (int t = 0; t < CX_CT__COUNT; t++) {
        cx_pcontact_t *c = &p->latest_by_type[t];
        fill_sid(&c->campaign_id, CX_ID_MAX, (char)('K' + t));
        c->campaign_type = (cx_campaign_type_t)t;
        c->channel = CX_CH_POST;
        c->group = CX_GROUP_CONTROL;
        c->ts_ms = -INT64_C(5) - t; /* negative timestamps survive too */
    }
    p->has_latest_by_type = (1u << CX_CT__COUNT) - 1;
    for (int i = 0; i < CX_OPEN_SENDS_MAX; i++) {
        cx_open_send_t *s = &p->sends[i];
        fill_sid(&s->campaign_id, CX_ID_MAX, (char)('m' + i));
        fill_sid(&s->send_event_id, CX_ID_MAX, (char)('M' + i));
        s->has_code = i % 2 == 0;
        if (s->has_code) fill_sid(&s->code, CX_ID_MAX, (char)('0' + i));
        s->ts_ms = INT64_C(1700000000000) + i;
        s->end_ts_ms = i == 3 ? 0 : INT64_C(1702592000001) + i;
        s->group = (uint8_t)(i % 2);
        s->responded = (uint8_t)((15 - i) & 15); /* the first with all four CX_SEND_* bits */
    }
    p->n_sends = CX_OPEN_SENDS_MAX;
    for (int i = 0; i < CX_DEDUP_MAX; i++)
        cr_assert_eq(
            cx_profile_dedup_add(p, UINT64_C(0xfedcba9876543210) ^ (uint64_t)i * 0x9e3779b97f4a7c15u, CX_DEDUP_MAX),
            CX_OK);
    cr_assert_eq(p->n_dedup, CX_DEDUP_MAX);
    p->dedup_next = 17;
    p->timer_due_ms = INT64_C(1700006400000);
    p->index_due_ms = INT64_C(1699906400000);
    p->rfm_due_ms = INT64_C(1700006400000);
    p->stop_due_ms = INT64_C(1701006400000);
    p->drop_due_ms = INT64_C(1702006400000);
    p->churn_due_ms = INT64_C(1703006400000);
}

static void assert_contact_eq(const cx_pcontact_t *a, const cx_pcontact_t *b) {
    cr_assert_str_eq(cx_sid_str(&a->campaign_id), cx_sid_str(&b->campaign_id));
    cr_assert_eq(a->campaign_type, b->campaign_type);
    cr_assert_eq(a->channel, b->channel);
    cr_assert_eq(a->group, b->group);
    cr_assert_eq(a->ts_ms, b->ts_ms);
}

/* Field-by-field equality of everything the encoding carries. */
static void assert_profile_eq(const cx_profile_t *a, const cx_profile_t *b) {
    cr_assert_str_eq(cx_sid_str(&a->customer_id), cx_sid_str(&b->customer_id));
    cr_assert_eq(a->has_tx, b->has_tx);
    cr_assert_eq(a->has_play, b->has_play);
    if (a->has_tx) {
        cr_assert_eq(a->first_tx_ts_ms, b->first_tx_ts_ms);
        cr_assert_eq(a->last_tx_ts_ms, b->last_tx_ts_ms);
        cr_assert_eq(a->first_tx_day, b->first_tx_day);
        cr_assert_eq(a->last_tx_day, b->last_tx_day);
        cr_assert_eq(a->tx_days, b->tx_days);
        cr_assert_eq(a->first_day_revenue_minor, b->first_day_revenue_minor);
        cr_assert_eq(a->tx_revenue_minor, b->tx_revenue_minor);
    }
    if (a->has_play) cr_assert_eq(a->last_play_ts_ms, b->last_play_ts_ms);
    cr_assert_eq(a->purchases_total, b->purchases_total);
    cr_assert_eq(a->revenue_total_minor, b->revenue_total_minor);
    cr_assert_eq(a->plays_total, b->plays_total);
    cr_assert_eq(a->n_buckets, b->n_buckets);
    for (uint32_t i = 0; i < a->n_buckets; i++) {
        cr_assert_eq(a->buckets[i].day, b->buckets[i].day, "bucket %u", i);
        cr_assert_eq(a->buckets[i].tx, b->buckets[i].tx, "bucket %u", i);
        cr_assert_eq(a->buckets[i].play, b->buckets[i].play, "bucket %u", i);
        cr_assert_eq(a->buckets[i].amount_minor, b->buckets[i].amount_minor, "bucket %u", i);
    }
    cr_assert_eq(a->r_score, b->r_score);
    cr_assert_eq(a->f_score, b->f_score);
    cr_assert_eq(a->m_score, b->m_score);
    cr_assert_eq(a->segment, b->segment);
    cr_assert_eq(a->n_play_days, b->n_play_days);
    for (unsigned i = 0; i < a->n_play_days; i++)
        cr_assert_eq(a->play_days[i], b->play_days[i]);
    cr_assert_eq(a->play_days_total, b->play_days_total);
    cr_assert_eq(a->last_trigger_ts_ms, b->last_trigger_ts_ms);
    for (int k = 0; k < CX_TRIG__COUNT; k++)
        cr_assert_eq(a->last_trigger_due_ms[k], b->last_trigger_due_ms[k]);
    for (int i = 0; i < CX_GENRES_KEPT; i++) {
        cr_assert_eq(a->genre_count[i], b->genre_count[i]);
        if (a->genre_count[i]) {
            cr_assert_str_eq(cx_sid_str(&a->genre[i]), cx_sid_str(&b->genre[i]));
            cr_assert_eq(a->genre_fp[i], b->genre_fp[i], "slot %d: the decoder recomputes the fingerprint", i);
        }
    }
    cr_assert_eq(a->has_nps, b->has_nps);
    if (a->has_nps) {
        cr_assert_eq(a->nps_last, b->nps_last);
        cr_assert_eq(a->nps_last_ts_ms, b->nps_last_ts_ms);
        cr_assert_eq(a->nps_count, b->nps_count);
    }
    cr_assert_eq(a->n_touchpoints, b->n_touchpoints);
    for (unsigned i = 0; i < a->n_touchpoints; i++) {
        cr_assert_str_eq(cx_sid_str(&a->touchpoints[i].touchpoint), cx_sid_str(&b->touchpoints[i].touchpoint));
        cr_assert_eq(a->touchpoints[i].score, b->touchpoints[i].score);
        cr_assert_eq(a->touchpoints[i].ts_ms, b->touchpoints[i].ts_ms);
    }
    cr_assert_eq(a->has_acquisition, b->has_acquisition);
    if (a->has_acquisition)
        cr_assert_str_eq(cx_sid_str(&a->acquisition_campaign_id), cx_sid_str(&b->acquisition_campaign_id));
    cr_assert_eq(a->newsletter_recipient, b->newsletter_recipient);
    cr_assert_eq(a->n_contacts, b->n_contacts);
    for (unsigned i = 0; i < a->n_contacts; i++)
        assert_contact_eq(&a->contacts[i], &b->contacts[i]);
    cr_assert_eq(a->has_latest_by_type, b->has_latest_by_type);
    for (int t = 0; t < CX_CT__COUNT; t++)
        if (a->has_latest_by_type & (1u << t)) assert_contact_eq(&a->latest_by_type[t], &b->latest_by_type[t]);
    cr_assert_eq(a->n_sends, b->n_sends);
    for (unsigned i = 0; i < a->n_sends; i++) {
        const cx_open_send_t *x = &a->sends[i], *y = &b->sends[i];
        cr_assert_str_eq(cx_sid_str(&x->campaign_id), cx_sid_str(&y->campaign_id));
        cr_assert_str_eq(cx_sid_str(&x->send_event_id), cx_sid_str(&y->send_event_id));
        cr_assert_eq(x->has_code, y->has_code);
        if (x->has_code) cr_assert_str_eq(cx_sid_str(&x->code), cx_sid_str(&y->code));
        cr_assert_eq(x->ts_ms, y->ts_ms);
        cr_assert_eq(x->end_ts_ms, y->end_ts_ms);
        cr_assert_eq(x->group, y->group);
        cr_assert_eq(x->responded, y->responded);
    }
    cr_assert_eq(a->n_dedup, b->n_dedup);
    cr_assert_eq(a->dedup_next, b->dedup_next);
    for (unsigned i = 0; i < a->n_dedup; i++)
        cr_assert_eq(*cx_profile_dedup_at(a, i), *cx_profile_dedup_at(b, i));
    cr_assert_eq(a->timer_due_ms, b->timer_due_ms);
    cr_assert_eq(a->index_due_ms, b->index_due_ms);
    cr_assert_eq(a->rfm_due_ms, b->rfm_due_ms);
    cr_assert_eq(a->stop_due_ms, b->stop_due_ms);
    cr_assert_eq(a->drop_due_ms, b->drop_due_ms);
    cr_assert_eq(a->churn_due_ms, b->churn_due_ms);
}

/* A customer one year into their life: weekly-ish transactions, a survey, some contacts. */
static void make_typical(cx_profile_t *p) {
    cx_profile_init(p, "cust-0012345");
    int32_t day0 = 19500;
    p->has_tx = true;
    p->first_tx_day = day0;
    p->last_tx_day = day0 + 360;
    p->first_tx_ts_ms = (int64_t)day0 * CX_DAY_MS + 68400000;
    p->last_tx_ts_ms = (int64_t)(day0 + 360) * CX_DAY_MS + 72000000;
    for (int i = 0; i <= 360; i += 7) { /* 52 transaction days, one purchase a month */
        cx_bucket_t *b = cx_profile_bucket(p, day0 + i);
        b->tx = 1 + (uint32_t)(i % 3);
        b->play = b->tx > (i % 28 == 0 ? 1u : 0u);
        b->amount_minor = i % 28 == 0 ? 1299 : 0;
        p->tx_days++;
    }
    p->purchases_total = 13;
    p->revenue_total_minor = 13 * 1299;
    p->plays_total = 110;
    p->first_day_revenue_minor = 1299;
    p->tx_revenue_minor = 13 * 1299;
    p->has_play = true;
    p->last_play_ts_ms = p->last_tx_ts_ms;
    p->r_score = 5;
    p->f_score = 4;
    p->m_score = 3;
    p->segment = 3;
    for (int i = 0; i < CX_PLAY_DAYS_KEPT; i++)
        p->play_days[i] = day0 + 297 + 7 * i;
    p->n_play_days = CX_PLAY_DAYS_KEPT;
    p->play_days_total = 52;
    cx_profile_set_genre(p, 0, "drama");
    p->genre_count[0] = 60;
    cx_profile_set_genre(p, 1, "comedy");
    p->genre_count[1] = 40;
    p->has_nps = true;
    p->nps_last = 9;
    p->nps_last_ts_ms = p->last_tx_ts_ms - 5 * CX_DAY_MS;
    p->nps_count = 2;
    cr_assert_eq(cx_profile_touchpoints(p), CX_OK);
    set_sid(&p->touchpoints[0].touchpoint, "general");
    p->touchpoints[0].score = 9;
    p->touchpoints[0].ts_ms = p->nps_last_ts_ms;
    p->n_touchpoints = 1;
    for (int i = 0; i < 3; i++) {
        cx_pcontact_t *c = &p->contacts[i];
        char id[32];
        snprintf(id, sizeof id, "newsletter-2024-%02d", i + 1);
        set_sid(&c->campaign_id, id);
        c->campaign_type = CX_CT_NEWSLETTER;
        c->ts_ms = p->first_tx_ts_ms + (int64_t)i * 30 * CX_DAY_MS;
    }
    p->n_contacts = 3;
    cr_assert_eq(cx_pcontact_copy(&p->latest_by_type[CX_CT_NEWSLETTER], &p->contacts[2]), CX_OK);
    p->has_latest_by_type = 1u << CX_CT_NEWSLETTER;
    p->newsletter_recipient = true;
    for (int i = 0; i < 8; i++)
        p->dedup[i] = cx_hash64(&i, sizeof i);
    p->n_dedup = 8;
    p->dedup_next = 3;
    p->rfm_due_ms = (int64_t)(day0 + 368) * CX_DAY_MS;
    p->stop_due_ms = (int64_t)(day0 + 374) * CX_DAY_MS;
    p->timer_due_ms = p->rfm_due_ms;
}

static void round_trip(const cx_profile_t *p, cx_buf_t *enc) {
    cx_buf_reset(enc);
    cr_assert_eq(cx_profile_encode(p, enc), CX_OK);
    cx_profile_t q;
    cx_profile_init(&q, NULL);
    char err[256] = "";
    cr_assert_eq(cx_profile_decode(&q, cx_sid_str(&p->customer_id), enc->data, enc->len, err, sizeof err), CX_OK, "%s",
                 err);
    assert_profile_eq(p, &q);
    /* the touchpoints' block is allocated only for a profile that holds touchpoints */
    cr_assert_eq(q.touchpoints != NULL, q.n_touchpoints > 0, "touchpoint block %p for %u touchpoints",
                 (void *)q.touchpoints, q.n_touchpoints);
    cx_buf_t again = CX_BUF_INIT;
    cr_assert_eq(cx_profile_encode(&q, &again), CX_OK);
    cr_assert_eq(again.len, enc->len);
    cr_assert(memcmp(again.data, enc->data, enc->len) == 0, "re-encoding differs");
    /* and through the older forms the encoder can still write: version 3 (whole times, nothing
     * referenced) and 4 (a bucket's day delta on its own) */
    for (int version = 3; version < CX_PROFILE_VERSION; version++) {
        cx_buf_reset(&again);
        cr_assert_eq(cx_profile_encode_as(p, &again, version), CX_OK);
        cr_assert_eq(again.data[0], version);
        cx_profile_clear(&q);
        cr_assert_eq(cx_profile_decode(&q, cx_sid_str(&p->customer_id), again.data, again.len, err, sizeof err), CX_OK,
                     "version %d: %s", version, err);
        assert_profile_eq(p, &q);
    }
    cx_buf_free(&again);
    cx_profile_clear(&q);
}

Test(profile, every_field_survives_a_round_trip_at_maximal_sizes) {
    cx_profile_t p;
    make_max(&p);
    cx_buf_t enc = CX_BUF_INIT;
    round_trip(&p, &enc);
    cr_log_info("maximal profile (400 buckets, every array full): %zu bytes", enc.len);
    cx_buf_free(&enc);
    cx_profile_clear(&p);
}

Test(profile, fresh_and_sparse_profiles_round_trip) {
    cx_buf_t enc = CX_BUF_INIT;
    cx_profile_t p;
    cx_profile_init(&p, "x");
    round_trip(&p, &enc); /* nothing set: segment -1, no optional groups */
    cr_assert_lt(enc.len, 40u);
    p.has_play = true; /* plays only, no transaction */
    p.last_play_ts_ms = 5;
    p.plays_total = 3;
    round_trip(&p, &enc);
    cx_buf_free(&enc);
    cx_profile_clear(&p);
}

/* Measured sizes (reported in docs and by the test log). The weekly viewer is a heavy user: one
 * bucket per week for a year dominates; the occasional buyer is the common case of a store. */
Test(profile, typical_customers_encode_compactly) {
    cx_profile_t p;
    make_typical(&p);
    cx_buf_t enc = CX_BUF_INIT;
    round_trip(&p, &enc);
    size_t weekly = enc.len;
    cx_profile_clear(&p);
    /* occasional buyer: 6 purchases on 5 days in a year, one newsletter, 6 dedup ids */
    cx_profile_init(&p, "cust-0012346");
    p.has_tx = true;
    p.first_tx_day = 19500;
    p.last_tx_day = 19800;
    p.first_tx_ts_ms = (int64_t)p.first_tx_day * CX_DAY_MS + 36000000;
    p.last_tx_ts_ms = (int64_t)p.last_tx_day * CX_DAY_MS + 50000000;
    for (int i = 0; i < 5; i++) {
        cx_bucket_t *b = cx_profile_bucket(&p, 19500 + 75 * i);
        b->tx = i == 2 ? 2 : 1;
        b->amount_minor = 499 * b->tx;
    }
    p.tx_days = 5;
    p.purchases_total = 6;
    p.revenue_total_minor = p.tx_revenue_minor = 6 * 499;
    p.first_day_revenue_minor = 499;
    p.r_score = 5;
    p.f_score = 2;
    p.m_score = 2;
    p.segment = 4;
    p.contacts[0] = (cx_pcontact_t){.ts_ms = p.last_tx_ts_ms - 86400000};
    set_sid(&p.contacts[0].campaign_id, "newsletter-2024-05");
    p.n_contacts = 1;
    cr_assert_eq(cx_pcontact_copy(&p.latest_by_type[CX_CT_NEWSLETTER], &p.contacts[0]), CX_OK);
    p.has_latest_by_type = 1;
    for (int i = 0; i < 6; i++)
        p.dedup[i] = cx_hash64(&i, sizeof i);
    p.n_dedup = 6;
    p.dedup_next = 6;
    p.rfm_due_ms = p.timer_due_ms = (int64_t)(p.last_tx_day + 8) * CX_DAY_MS;
    round_trip(&p, &enc);
    size_t occasional = enc.len;
    fprintf(stderr,
            "profile: encoded size: weekly viewer (52 transaction days, 3 contacts, 8 dedup ids) %zu bytes, "
            "occasional buyer (5 days, 1 contact, 6 dedup ids) %zu bytes\n",
            weekly, occasional);
    cr_assert_lt(occasional, 300u, "occasional buyer takes %zu bytes", occasional);
    cr_assert_lt(weekly, 600u, "weekly viewer takes %zu bytes", weekly);
    cx_buf_free(&enc);
    cx_profile_clear(&p);
}

/* Version 4 writes times as differences from the latest transaction or play, the times most
 * profiles leave at 0 not at all, a latest contact per type and a send's campaign and time as a
 * reference to the kept contact that holds the same, and timer and index due only where they are
 * not the earliest due and the timer. Each of these is checked against version 3, which has none. */
Test(profile, version_4_references_repeats_and_leaves_out_what_is_implied) {
    cx_profile_t p;
    make_typical(&p); /* its latest newsletter is contacts[2] */
    cr_assert_eq(cx_profile_camp_reserve(&p, CX_CONTACTS_KEPT, 1), CX_OK);
    cx_open_send_t *s = &p.sends[0];
    set_sid(&s->campaign_id, cx_sid_str(&p.contacts[1].campaign_id));
    s->ts_ms = p.contacts[1].ts_ms;
    set_sid(&s->send_event_id, "send-000042");
    s->has_code = true;
    set_sid(&s->code, "CC-NEWSLETTER");
    s->end_ts_ms = p.rfm_due_ms + 3 * CX_DAY_MS;
    s->responded = 1;
    p.n_sends = 1;
    cr_assert_eq(cx_profile_earliest_due(&p), p.rfm_due_ms);
    p.timer_due_ms = p.index_due_ms = p.rfm_due_ms;
    cx_buf_t e4 = CX_BUF_INIT, e3 = CX_BUF_INIT;
    round_trip(&p, &e4);
    cr_assert_eq(cx_profile_encode_as(&p, &e3, 3), CX_OK);
    /* left out: the latest contact's id and time, the send's campaign id and time, the timer and
     * index dues (5-6 bytes each), a byte per unset time; the base costs 6 */
    size_t repeated = strlen(cx_sid_str(&p.latest_by_type[CX_CT_NEWSLETTER].campaign_id)) +
                      strlen(cx_sid_str(&s->campaign_id)) + 4 * 5;
    cr_assert_leq(e4.len + repeated, e3.len, "version %d %zu bytes, version 3 %zu", CX_PROFILE_VERSION, e4.len, e3.len);
    fprintf(stderr, "profile: weekly viewer with an open send: version 3 %zu bytes, version %d %zu bytes\n", e3.len,
            CX_PROFILE_VERSION, e4.len);
    size_t referenced = e4.len;
    /* a latest contact no kept contact equals, and a send without its contact, are written out */
    p.latest_by_type[CX_CT_NEWSLETTER].group = 1;
    s->ts_ms += 1000;
    round_trip(&p, &e4);
    cr_assert_geq(e4.len, referenced + repeated - 4 * 5, "%zu bytes written out, %zu referenced", e4.len, referenced);
    /* a timer and an index key that are not the earliest due, and times before the base */
    p.timer_due_ms = p.rfm_due_ms - 1;
    p.index_due_ms = 12345;
    p.last_trigger_due_ms[CX_TRIG_CHURN_RISK] = -7;
    p.churn_due_ms = INT64_MIN;
    p.nps_due_ms = INT64_MAX;
    round_trip(&p, &e4);
    cx_buf_free(&e4);
    cx_buf_free(&e3);
    cx_profile_clear(&p);
}

/* The references and presence bits of version 4 are checked: one to a contact that is not kept, or
 * a bit that names nothing, is a corrupt encoding, not a read past the kept contacts. */
Test(profile, version_4_refuses_references_and_bits_beyond_what_it_holds) {
    cx_profile_t p, q;
    make_typical(&p); /* 3 kept contacts; the latest newsletter is the third: reference 3 */
    cx_profile_init(&q, NULL);
    cx_buf_t a = CX_BUF_INIT, b = CX_BUF_INIT;
    cr_assert_eq(cx_profile_encode(&p, &a), CX_OK);
    cr_assert_eq(cx_pcontact_copy(&p.latest_by_type[CX_CT_NEWSLETTER], &p.contacts[1]), CX_OK);
    cr_assert_eq(cx_profile_encode(&p, &b), CX_OK);
    cr_assert_eq(a.len, b.len);
    size_t at = 0, diffs = 0;
    for (size_t i = 0; i < a.len; i++)
        if (a.data[i] != b.data[i]) at = i, diffs++;
    cr_assert_eq(diffs, 1u, "the reference is the only difference");
    cr_assert_eq(a.data[at], 3);
    cr_assert_eq(b.data[at], 2);
    char err[256] = "";
    a.data[at] = 1;
    cr_assert_eq(cx_profile_decode(&q, "c", a.data, a.len, err, sizeof err), CX_OK, "%s", err);
    cr_assert(cx_sid_eq(&q.latest_by_type[CX_CT_NEWSLETTER].campaign_id, cx_sid_str(&p.contacts[0].campaign_id)));
    cr_assert_eq(q.latest_by_type[CX_CT_NEWSLETTER].ts_ms, p.contacts[0].ts_ms);
    a.data[at] = 4;
    err[0] = 0;
    cr_assert_eq(cx_profile_decode(&q, "c", a.data, a.len, err, sizeof err), CX_ERR_STATE);
    cr_assert(strstr(err, "corrupt") != NULL, "%s", err);
    /* the due group's presence bits: 7 name something, the eighth nothing */
    cx_profile_clear(&p);
    cx_profile_init(&p, "c");
    cx_buf_reset(&a);
    cr_assert_eq(cx_profile_encode(&p, &a), CX_OK);
    cr_assert_eq(a.data[a.len - 3], 0, "no due set: bits 0, then the two CX economics figures 0");
    cx_buf_reset(&b);
    cx_buf_append(&b, a.data, a.len - 3);
    cx_buf_put_uvarint(&b, 1u << 7);
    cx_buf_append(&b, a.data + a.len - 2, 2);
    cr_assert_eq(cx_profile_decode(&q, "c", b.data, b.len, err, sizeof err), CX_ERR_STATE);
    cx_buf_free(&a);
    cx_buf_free(&b);
    cx_profile_clear(&p);
    cx_profile_clear(&q);
}

Test(profile, every_truncation_is_refused) {
    cx_profile_t p, q;
    make_max(&p);
    cx_profile_init(&q, NULL);
    cx_buf_t enc = CX_BUF_INIT;
    cr_assert_eq(cx_profile_encode(&p, &enc), CX_OK);
    char err[256];
    for (size_t n = 0; n < enc.len; n++) {
        /* a fresh heap copy of exactly n bytes, so ASan sees any read past the end */
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, enc.data, n);
        err[0] = 0;
        cr_assert_eq(cx_profile_decode(&q, "c", copy, n, err, sizeof err), CX_ERR_STATE, "prefix of %zu bytes", n);
        cr_assert_neq(err[0], 0);
        cr_assert_eq(q.n_buckets, 0u, "a refused decode leaves a cleared profile");
        free(copy);
    }
    /* one byte too many is refused as well */
    cx_buf_putc(&enc, 0);
    cr_assert_eq(cx_profile_decode(&q, "c", enc.data, enc.len, err, sizeof err), CX_ERR_STATE);
    cx_buf_free(&enc);
    cx_profile_clear(&p);
    cx_profile_clear(&q);
}

Test(profile, version_1_without_index_due_is_read_as_keyed_at_timer_due) {
    cx_profile_t p, q;
    make_typical(&p);
    p.index_due_ms = 0; /* encodes as the single last byte 0 */
    p.n_buckets = 0;    /* the day buckets' form changed in version 3; the rest of 3 is version 1's */
    cx_buf_t enc = CX_BUF_INIT;
    cr_assert_eq(cx_profile_encode_as(&p, &enc, 3), CX_OK);
    cr_assert_eq(enc.data[0], 3);
    cr_assert_eq(enc.data[enc.len - 1], 0);
    enc.data[0] = 1;
    cx_profile_init(&q, NULL);
    char err[256] = "";
    cr_assert_eq(cx_profile_decode(&q, "c", enc.data, enc.len - 1, err, sizeof err), CX_OK, "%s", err);
    cr_assert_neq(p.timer_due_ms, 0);
    cr_assert_eq(q.index_due_ms, p.timer_due_ms);
    cr_assert_eq(q.timer_due_ms, p.timer_due_ms);
    cx_buf_free(&enc);
    cx_profile_clear(&p);
    cx_profile_clear(&q);
}

Test(profile, unknown_version_is_refused_with_detail) {
    uint8_t v9[] = {9, 0};
    cx_profile_t q;
    cx_profile_init(&q, NULL);
    char err[256] = "";
    cr_assert_eq(cx_profile_decode(&q, "c", v9, sizeof v9, err, sizeof err), CX_ERR_STATE);
    cr_assert(strstr(err, "version") != NULL, "%s", err);
    cx_profile_clear(&q);
}

/* Every byte replaced by other values: decode either refuses or yields a profile that encodes again;
 * never reads or writes outside the buffers (checked under ASan/UBSan). */
static void flip_all(const cx_profile_t *p, bool all_values) {
    cx_buf_t enc = CX_BUF_INIT, re = CX_BUF_INIT;
    cr_assert_eq(cx_profile_encode(p, &enc), CX_OK);
    uint8_t *copy = malloc(enc.len);
    cx_profile_t q;
    cx_profile_init(&q, NULL);
    char err[256];
    size_t accepted = 0, refused = 0;
    for (size_t i = 0; i < enc.len; i++) {
        for (int v = 0; v < 256; v++) {
            uint8_t b = all_values ? (uint8_t)v : (uint8_t)(enc.data[i] ^ (1u << (v & 7)));
            if (!all_values && v >= 8) break;
            if (b == enc.data[i]) continue;
            memcpy(copy, enc.data, enc.len);
            copy[i] = b;
            if (cx_profile_decode(&q, "c", copy, enc.len, err, sizeof err) == CX_OK) {
                accepted++;
                cx_buf_reset(&re);
                cr_assert_eq(cx_profile_encode(&q, &re), CX_OK);
            } else {
                refused++;
            }
        }
    }
    cr_log_info("byte changes: %zu decoded, %zu refused", accepted, refused);
    cr_assert_gt(refused, 0u);
    free(copy);
    cx_buf_free(&enc);
    cx_buf_free(&re);
    cx_profile_clear(&q);
}

Test(profile, every_single_byte_change_of_a_typical_profile_is_safe) {
    cx_profile_t p;
    make_typical(&p);
    flip_all(&p, true);
    cx_profile_clear(&p);
}

Test(profile, every_bit_flip_of_a_maximal_profile_is_safe) {
    cx_profile_t p;
    make_max(&p);
    flip_all(&p, false);
    cx_profile_clear(&p);
}

Test(profile, buckets_stay_sorted_with_one_per_day) {
    cx_profile_t p;
    cx_profile_init(&p, "b");
    int32_t days[] = {10, 5, 20, 5, 15, 1, 20, 10};
    for (size_t i = 0; i < sizeof days / sizeof *days; i++)
        cx_profile_bucket(&p, days[i])->tx++;
    int32_t want[] = {1, 5, 10, 15, 20};
    uint32_t want_tx[] = {1, 2, 2, 1, 2};
    cr_assert_eq(p.n_buckets, 5u);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(p.buckets[i].day, want[i]);
        cr_assert_eq(p.buckets[i].tx, want_tx[i]);
    }
    cx_profile_prune_buckets(&p, 10); /* keeps day >= 10 */
    cr_assert_eq(p.n_buckets, 3u);
    cr_assert_eq(p.buckets[0].day, 10);
    cx_profile_prune_buckets(&p, 100);
    cr_assert_eq(p.n_buckets, 0u);
    cx_profile_clear(&p);
}

Test(profile, dedup_ring_forgets_the_oldest_beyond_keep) {
    cx_profile_t p;
    cx_profile_init(&p, "d");
    for (uint64_t fp = 1; fp <= 3; fp++)
        cx_profile_dedup_add(&p, fp, 2);
    cr_assert_not(cx_profile_dedup_seen(&p, 1), "the oldest of three with keep=2 is forgotten");
    cr_assert(cx_profile_dedup_seen(&p, 2));
    cr_assert(cx_profile_dedup_seen(&p, 3));
    cx_profile_dedup_add(&p, 4, 2);
    cr_assert_not(cx_profile_dedup_seen(&p, 2));
    cr_assert(cx_profile_dedup_seen(&p, 4));
    /* keep above the maximum is clamped: the ring never outgrows CX_DEDUP_MAX */
    cx_profile_t q;
    cx_profile_init(&q, "d");
    for (uint64_t fp = 1; fp <= CX_DEDUP_MAX + 5; fp++)
        cx_profile_dedup_add(&q, fp, 1000);
    cr_assert_eq(q.n_dedup, CX_DEDUP_MAX);
    cr_assert_not(cx_profile_dedup_seen(&q, 5));
    cr_assert(cx_profile_dedup_seen(&q, 6));
    cx_profile_clear(&p);
    cx_profile_clear(&q);
}

/* dedup.per_customer above CX_DEDUP_INLINE: the ring's later entries live in their own block, which
 * exists only then, is found by seen, survives the encoding and is copied, not shared. */
Test(profile, a_ring_beyond_the_struct_lives_in_its_own_block_and_round_trips) {
    cx_profile_t p, q, r;
    cx_profile_init(&p, "ring");
    for (uint64_t fp = 1; fp <= CX_DEDUP_INLINE; fp++)
        cr_assert_eq(cx_profile_dedup_add(&p, fp, 12), CX_OK);
    cr_assert_null(p.dedup_more, "no block while the ring fits the struct");
    for (uint64_t fp = CX_DEDUP_INLINE + 1; fp <= 14; fp++)
        cr_assert_eq(cx_profile_dedup_add(&p, fp, 12), CX_OK);
    cr_assert_not_null(p.dedup_more);
    cr_assert_eq(p.n_dedup, 12);
    cr_assert_not(cx_profile_dedup_seen(&p, 2), "the two oldest of 14 with keep=12 are forgotten");
    for (uint64_t fp = 3; fp <= 14; fp++)
        cr_assert(cx_profile_dedup_seen(&p, fp), "%llu", (unsigned long long)fp);
    cx_buf_t enc = CX_BUF_INIT;
    char err[256];
    cr_assert_eq(cx_profile_encode(&p, &enc), CX_OK);
    cx_profile_init_lean(&q, NULL);
    cr_assert_eq(cx_profile_decode(&q, "ring", enc.data, enc.len, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(q.n_dedup, 12);
    cr_assert_eq(q.dedup_next, p.dedup_next);
    for (unsigned i = 0; i < 12; i++)
        cr_assert_eq(*cx_profile_dedup_at(&q, i), *cx_profile_dedup_at(&p, i), "entry %u", i);
    cx_profile_init_lean(&r, NULL);
    cr_assert_eq(cx_profile_copy(&r, &q), CX_OK);
    cr_assert_neq(r.dedup_more, q.dedup_more);
    cx_profile_clear(&q);
    for (uint64_t fp = 3; fp <= 14; fp++)
        cr_assert(cx_profile_dedup_seen(&r, fp), "copy: %llu", (unsigned long long)fp);
    cr_assert_eq(cx_profile_dedup_add(&r, 15, 12), CX_OK);
    cr_assert_not(cx_profile_dedup_seen(&r, 3));
    cx_buf_free(&enc);
    cx_profile_clear(&p);
    cx_profile_clear(&r);
}

Test(profile, copy_is_deep) {
    cx_profile_t p, q;
    make_typical(&p);
    cx_profile_init_lean(&q, NULL);
    cr_assert_eq(cx_profile_copy(&q, &p), CX_OK);
    cr_assert_neq(q.buckets, p.buckets);
    assert_profile_eq(&p, &q);
    q.buckets[0].tx = 999;
    cr_assert_neq(p.buckets[0].tx, 999u);
    cx_profile_clear(&p);
    cx_profile_clear(&q);
}

/* Hand-made bytes whose deltas overflow the field they rebuild: refused, without signed overflow
 * (UBSan aborts the sanitized build on one). */
/* The bytes of buckets[5] (days 19000.., amounts 100 * i) after their count, bucket 4's tx given.
 * Version 2: tx, the second number given (the transactions that were not plays), the amount.
 * Version 3: tx << 2 | play << 1 | (amount != 0), then the amount when not 0.
 * Version 5: that varint << 3 | the day delta when 1-7 (else 0 and the delta follows), then the amount. */
static void bucket_bytes(cx_buf_t *b, int version, const uint64_t *tx, const uint64_t *nonplay, const bool *play,
                         uint64_t tx4) {
    cx_buf_reset(b);
    cx_buf_put_uvarint(b, 5);
    for (int i = 0; i < 5; i++) {
        uint64_t t = i == 4 ? tx4 : tx[i];
        if (version >= 5) {
            cx_buf_put_uvarint(b, (t << 2 | (uint64_t)play[i] << 1 | (i != 0)) << 3 | (i ? 1 : 0));
            if (!i) cx_buf_put_svarint(b, 19000);
            if (i) cx_buf_put_svarint(b, 100 * i);
            continue;
        }
        cx_buf_put_svarint(b, i ? 1 : 19000);
        if (version == 2) {
            cx_buf_put_uvarint(b, t);
            cx_buf_put_uvarint(b, nonplay[i]);
            cx_buf_put_svarint(b, 100 * i);
        } else {
            cx_buf_put_uvarint(b, t << 2 | (uint64_t)play[i] << 1 | (i != 0));
            if (i) cx_buf_put_svarint(b, 100 * i);
        }
    }
}

/* A bucket keeps whether its day had a play, not how many (cx_bucket_t). Version 3 writes that bit
 * beside tx in one varint, and the amount only when not 0; version 2 wrote tx, the transactions
 * that were not plays (0 on a play day, or before 2026-12-07 the day's exact purchases) and the
 * amount: all three forms read the same. A count of transactions beyond 31 bits is refused. */
Test(profile, play_days_are_read_from_exact_counts_and_flags_alike) {
    static const uint64_t tx[] = {3, 2, 5, 1, 4}, now[] = {0, 2, 0, 0, 4}, before[] = {1, 2, 0, 0, 4};
    static const bool play[] = {true, false, true, true, false};
    cx_profile_t p, q;
    cx_profile_init(&p, "c");
    for (int i = 0; i < 5; i++) {
        cx_bucket_t *k = cx_profile_bucket(&p, 19000 + i);
        k->tx = (uint32_t)tx[i];
        k->play = play[i];
        k->amount_minor = 100 * i;
    }
    cx_buf_t e = CX_BUF_INIT, want = CX_BUF_INIT, old = CX_BUF_INIT, h = CX_BUF_INIT;
    cr_assert_eq(cx_profile_encode_as(&p, &e, 3), CX_OK); /* version 4 writes buckets as 3 does */
    cr_assert_eq(e.data[0], 3, "version 3");
    bucket_bytes(&want, 3, tx, now, play, tx[4]);
    uint8_t *at = memmem(e.data, e.len, want.data, want.len);
    cr_assert_not_null(at, "tx and the play bit in one varint, no amount of 0");
    size_t pre = (size_t)(at - e.data), post = e.len - pre - want.len;
    char err[256] = "";
    /* version 2 with a play day's 0; with the earlier writer's exact purchases; version 3 and then
     * version 2 with 2^31 transactions */
    for (int k = 0; k < 4; k++) {
        int version = k == 2 ? 3 : 2;
        bucket_bytes(&old, version, tx, k == 0 ? now : before, play, k >= 2 ? (uint64_t)CX_BUCKET_TX_MAX + 1 : tx[4]);
        cx_buf_reset(&h);
        cx_buf_append(&h, e.data, pre);
        cx_buf_append(&h, old.data, old.len);
        cx_buf_append(&h, at + want.len, post);
        h.data[0] = (uint8_t)version;
        cx_profile_init(&q, NULL);
        cx_err_t rc = cx_profile_decode(&q, "c", h.data, h.len, err, sizeof err);
        if (k >= 2) {
            cr_assert_eq(rc, CX_ERR_STATE, "version %d: a count of 2^31 transactions in a day must be refused",
                         version);
        } else {
            cr_assert_eq(rc, CX_OK, "%s", err);
            cr_assert_eq(q.n_buckets, 5u);
            for (int i = 0; i < 5; i++) {
                cr_assert_eq(q.buckets[i].day, 19000 + i);
                cr_assert_eq(q.buckets[i].tx, tx[i], "bucket %d", i);
                cr_assert_eq((bool)q.buckets[i].play, play[i], "bucket %d", i);
                cr_assert_eq(q.buckets[i].amount_minor, 100 * i);
            }
        }
        cx_profile_clear(&q);
    }
    /* version 5 writes a bucket a day after the one before as one varint (these: one byte each
     * but the first), and refuses 2^31 transactions in that form too */
    cx_buf_reset(&e);
    cr_assert_eq(cx_profile_encode(&p, &e), CX_OK);
    cr_assert_eq(e.data[0], 5);
    bucket_bytes(&want, 5, tx, now, play, tx[4]);
    cr_assert_eq(want.data[5], (2 << 2 | 1) << 3 | 1, "the second bucket: tx 2, an amount, a day later");
    at = memmem(e.data, e.len, want.data, want.len);
    cr_assert_not_null(at, "version 5's bucket form");
    bucket_bytes(&old, 5, tx, now, play, (uint64_t)CX_BUCKET_TX_MAX + 1);
    cx_buf_reset(&h);
    cx_buf_append(&h, e.data, (size_t)(at - e.data));
    cx_buf_append(&h, old.data, old.len);
    cx_buf_append(&h, at + want.len, e.len - (size_t)(at - e.data) - want.len);
    cx_profile_init(&q, NULL);
    cr_assert_eq(cx_profile_decode(&q, "c", h.data, h.len, err, sizeof err), CX_ERR_STATE);
    cx_profile_clear(&q);
    cx_buf_free(&e);
    cx_buf_free(&want);
    cx_buf_free(&old);
    cx_buf_free(&h);
    cx_profile_clear(&p);
}

Test(profile, hostile_deltas_are_refused_without_overflow) {
    cx_profile_t q;
    cx_profile_init(&q, NULL);
    char err[256];
    cx_buf_t b = CX_BUF_INIT;
    /* two buckets: day INT32_MAX, then a delta of +1 (version 2: three numbers per bucket after the
     * day; version 3: one) */
    for (int version = 2; version <= 3; version++) {
        int per = version == 2 ? 3 : 1;
        cx_buf_reset(&b);
        cx_buf_put_uvarint(&b, (uint64_t)version);
        cx_buf_put_uvarint(&b, 0); /* flags */
        cx_buf_put_uvarint(&b, 0); /* purchases */
        cx_buf_put_svarint(&b, 0); /* revenue */
        cx_buf_put_uvarint(&b, 0); /* plays */
        cx_buf_put_uvarint(&b, 2); /* buckets */
        cx_buf_put_svarint(&b, INT32_MAX);
        for (int i = 0; i < per; i++)
            cx_buf_put_uvarint(&b, 0);
        cx_buf_put_svarint(&b, 1);
        for (int i = 0; i < per; i++)
            cx_buf_put_uvarint(&b, 0);
        for (int i = 0; i < 40; i++)
            cx_buf_put_uvarint(&b, 0); /* the rest: zeros */
        cr_assert_eq(cx_profile_decode(&q, "c", b.data, b.len, err, sizeof err), CX_ERR_STATE, "version %d", version);
    }
    /* version 5: a day, then a near delta of 1 inside the next bucket's varint; the rest exactly
     * what the decoder reads after the buckets, so the first day decides (INT32_MAX - 1: read) */
    for (int64_t first = INT32_MAX - 1; first <= INT32_MAX; first++) {
        cx_buf_reset(&b);
        cx_buf_put_uvarint(&b, 5);
        cx_buf_put_uvarint(&b, 0);               /* flags */
        cx_buf_put_svarint(&b, 0);               /* base */
        cx_buf_put_uvarint(&b, 0);               /* purchases */
        cx_buf_put_svarint(&b, 0);               /* revenue */
        cx_buf_put_uvarint(&b, 0);               /* plays */
        cx_buf_put_uvarint(&b, 2);               /* buckets */
        cx_buf_put_uvarint(&b, 1 << 2 << 3);     /* tx 1, the day follows */
        cx_buf_put_svarint(&b, first);           /* the day */
        cx_buf_put_uvarint(&b, 1 << 2 << 3 | 1); /* tx 1, a day later */
        for (int i = 0; i < 15; i++)             /* scores .. CX economics, all 0 */
            cx_buf_put_uvarint(&b, 0);
        cx_err_t rc = cx_profile_decode(&q, "c", b.data, b.len, err, sizeof err);
        cr_assert_eq(rc, first < INT32_MAX ? CX_OK : CX_ERR_STATE, "version 5, first day %lld: %s", (long long)first,
                     err);
        if (rc == CX_OK) cr_assert_eq(q.buckets[1].day, INT32_MAX);
    }
    /* version 3: first transaction timestamp INT64_MAX, then last = first + 1 (version 4 writes
     * both as differences from a base, modulo 2^64, so any pair of values is one) */
    cx_buf_reset(&b);
    cx_buf_put_uvarint(&b, 3);
    cx_buf_put_uvarint(&b, 1); /* F_TX */
    cx_buf_put_svarint(&b, INT64_MAX);
    cx_buf_put_svarint(&b, 1);
    cx_buf_put_svarint(&b, INT32_MAX); /* first day */
    cx_buf_put_svarint(&b, 1);         /* last day delta */
    for (int i = 0; i < 40; i++)
        cx_buf_put_uvarint(&b, 0);
    cr_assert_eq(cx_profile_decode(&q, "c", b.data, b.len, err, sizeof err), CX_ERR_STATE);
    /* play days: INT32_MAX then +1 */
    cx_profile_t p;
    cx_profile_init(&p, "c");
    p.n_play_days = 2;
    p.play_days[0] = 0;
    p.play_days[1] = 1;
    cx_buf_reset(&b);
    cr_assert_eq(cx_profile_encode(&p, &b), CX_OK);
    /* the play-day deltas are the single bytes 0 (zigzag 0) and 2 (zigzag 1) after n_play_days=2 */
    const uint8_t pat[] = {2, 0, 2};
    uint8_t *at = memmem(b.data, b.len, pat, sizeof pat);
    cr_assert_not_null(at);
    cx_buf_t h = CX_BUF_INIT;
    cx_buf_append(&h, b.data, (size_t)(at - b.data) + 1);
    cx_buf_put_svarint(&h, INT32_MAX);
    cx_buf_append(&h, at + 2, b.len - (size_t)(at - b.data) - 2);
    cr_assert_eq(cx_profile_decode(&q, "c", h.data, h.len, err, sizeof err), CX_ERR_STATE);
    cx_buf_free(&h);
    cx_buf_free(&b);
    cx_profile_clear(&q);
    cx_profile_clear(&p);
}

/* ---- ids kept at their length (cx_sid_t) ---- */

Test(profile, sid_keeps_short_ids_inline_and_long_ones_on_the_heap) {
    cx_sid_t s = {0};
    cr_assert_str_eq(cx_sid_str(&s), "", "all-zero is the empty id");
    char v[CX_ID_MAX + 2];
    for (size_t n = 0; n <= CX_ID_MAX; n++) {
        fill_str(v, n, (char)('a' + n % 26));
        cr_assert_eq(cx_sid_set(&s, v), CX_OK);
        cr_assert_str_eq(cx_sid_str(&s), v, "length %zu", n);
        cr_assert_eq(cx_sid_str(&s) == s.b, n <= CX_SID_INLINE, "length %zu: inline up to %d bytes", n, CX_SID_INLINE);
    }
    fill_str(v, CX_ID_MAX + 1, 'x');
    cr_assert_eq(cx_sid_set(&s, v), CX_ERR_INVALID, "longer than CX_ID_MAX");
    cr_assert_eq(strlen(cx_sid_str(&s)), CX_ID_MAX, "a refused value leaves the id as it was");
    cr_assert_eq(cx_sid_set(&s, "short"), CX_OK, "heap to inline frees the heap string (ASan: no leak)");
    cr_assert_str_eq(cx_sid_str(&s), "short");
    cr_assert(cx_sid_eq(&s, "short"));
    cr_assert_not(cx_sid_eq(&s, "shorter"));
    cx_sid_free(&s);
    cr_assert_str_eq(cx_sid_str(&s), "");
}

Test(profile, sid_set_from_its_own_string) {
    cx_sid_t s = {0};
    cr_assert_eq(cx_sid_set(&s, "inline-id"), CX_OK);
    cr_assert_eq(cx_sid_set(&s, cx_sid_str(&s) + 7), CX_OK, "a suffix of itself, inline");
    cr_assert_str_eq(cx_sid_str(&s), "id");
    char v[64];
    fill_str(v, 40, 'h');
    cr_assert_eq(cx_sid_set(&s, v), CX_OK);
    cr_assert_eq(cx_sid_dup(&s, &s), CX_OK, "itself, on the heap (ASan: no use after free)");
    cr_assert_str_eq(cx_sid_str(&s), v);
    cr_assert_eq(cx_sid_set(&s, cx_sid_str(&s) + 30), CX_OK, "a heap suffix that fits inline");
    cr_assert_str_eq(cx_sid_str(&s), "hhhhhhhhhh");
    cx_sid_free(&s);
}

/* Long ids in every slot: a deep copy owns its own strings, eviction and removal free what leaves,
 * and clearing both profiles frees everything exactly once (the ASan run checks the frees). */
Test(profile, long_campaign_ids_are_owned_copied_and_freed_once) {
    cx_profile_t *p = calloc(1, sizeof *p), *q = calloc(1, sizeof *q);
    cr_assert(p && q);
    make_max(p);
    cr_assert_eq(cx_profile_copy(q, p), CX_OK);
    for (int i = 0; i < CX_OPEN_SENDS_MAX; i++) {
        cr_assert_neq(cx_sid_str(&q->sends[i].send_event_id), cx_sid_str(&p->sends[i].send_event_id),
                      "send %d: the copy has its own string", i);
        cr_assert_str_eq(cx_sid_str(&q->sends[i].send_event_id), cx_sid_str(&p->sends[i].send_event_id));
    }
    cr_assert_neq(cx_sid_str(&q->contacts[0].campaign_id), cx_sid_str(&p->contacts[0].campaign_id));
    cr_assert_neq(cx_sid_str(&q->customer_id), cx_sid_str(&p->customer_id), "the struct's ids too");
    cr_assert_neq(cx_sid_str(&q->genre[0]), cx_sid_str(&p->genre[0]));
    cr_assert_neq(cx_sid_str(&q->touchpoints[0].touchpoint), cx_sid_str(&p->touchpoints[0].touchpoint));
    cr_assert_neq(cx_sid_str(&q->acquisition_campaign_id), cx_sid_str(&p->acquisition_campaign_id));
    cx_profile_clear(p);
    assert_profile_eq(q, q); /* still readable after the original is gone */
    char first[CX_ID_MAX + 1];
    fill_str(first, CX_ID_MAX, 'M');
    cr_assert_str_eq(cx_sid_str(&q->sends[0].send_event_id), first);
    cx_profile_clear(q);
    free(p);
    free(q);
}

Test(profile, campaign_block_grows_on_demand_and_keeps_its_contents) {
    cx_profile_t p;
    cx_profile_init_lean(&p, "c");
    cr_assert_null(p.camp);
    cr_assert_eq(cx_profile_camp_reserve(&p, 0, 1), CX_OK);
    cr_assert_not_null(p.sends);
    cr_assert_null(p.contacts, "no room asked for contacts");
    set_sid(&p.sends[0].campaign_id, "s0");
    p.sends[0].ts_ms = 7;
    p.n_sends = 1;
    /* contacts grow in front of the sends: the send moves with its contents */
    for (unsigned i = 0; i < CX_CONTACTS_KEPT + 3; i++) {
        cr_assert_eq(cx_profile_camp_reserve(&p, p.n_contacts + 1u, 0), CX_OK);
        if (p.n_contacts < CX_CONTACTS_KEPT) {
            char id[16];
            snprintf(id, sizeof id, "c%u", i);
            set_sid(&p.contacts[p.n_contacts].campaign_id, id);
            p.n_contacts++;
        }
    }
    cr_assert_eq(p.camp->cap_contacts, CX_CONTACTS_KEPT, "capped at CX_CONTACTS_KEPT");
    cr_assert_str_eq(cx_sid_str(&p.sends[0].campaign_id), "s0");
    cr_assert_eq(p.sends[0].ts_ms, 7);
    cr_assert_str_eq(cx_sid_str(&p.contacts[CX_CONTACTS_KEPT - 1].campaign_id), "c7");
    cr_assert_eq(cx_profile_camp_reserve(&p, 0, CX_OPEN_SENDS_MAX + 5), CX_OK);
    cr_assert_eq(p.camp->cap_sends, CX_OPEN_SENDS_MAX);
    cr_assert_str_eq(cx_sid_str(&p.sends[0].campaign_id), "s0");
    cr_assert_str_eq(cx_sid_str(&p.sends[CX_OPEN_SENDS_MAX - 1].campaign_id), "", "new room is zeroed");
    /* a decoded profile holds just the room its sections need */
    cx_buf_t enc = CX_BUF_INIT;
    cr_assert_eq(cx_profile_encode(&p, &enc), CX_OK);
    cx_profile_t q;
    cx_profile_init_lean(&q, NULL);
    char err[256] = "";
    cr_assert_eq(cx_profile_decode(&q, "c", enc.data, enc.len, err, sizeof err), CX_OK, "%s", err);
    cr_assert_eq(q.camp->cap_contacts, CX_CONTACTS_KEPT);
    cr_assert_eq(q.camp->cap_sends, 2, "one send, room rounded up to a step of two");
    cr_assert_str_eq(cx_sid_str(&q.sends[0].campaign_id), "s0");
    cx_buf_free(&enc);
    cx_profile_clear(&p);
    cx_profile_clear(&q);
}
