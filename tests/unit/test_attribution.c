/*
 * test_attribution.c — window edges, hard/soft, last touch, control group, repeated and waiting
 * sends, and the contact-history exclusion test; the per-customer rules through campaigns.c with
 * a fake campaign table and a capturing sink.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "attribution.h"
#include "campaigns.h"

#define T0 INT64_C(1700000000000)
#define D  CX_DAY_MS

/* ---- fixtures ---- */

static cx_campaign_t camps[4];
static size_t n_camps;
static char *titles_c1[] = {"T9"};

static const cx_campaign_t *lookup(void *opaque, const char *id) {
    (void)opaque;
    for (size_t i = 0; i < n_camps; i++)
        if (strcmp(camps[i].campaign_id, id) == 0) return &camps[i];
    return NULL;
}

static cx_campaign_t *add_camp(const char *id, cx_campaign_type_t type, int32_t obs, const char *code) {
    cx_campaign_t *c = &camps[n_camps++];
    memset(c, 0, sizeof *c);
    snprintf(c->campaign_id, sizeof c->campaign_id, "%s", id);
    c->type = type;
    c->start_ts_ms = T0;
    c->end_ts_ms = T0 + D;
    c->observation_days = obs;
    if (code) {
        c->has_campaign_code = true;
        snprintf(c->campaign_code, sizeof c->campaign_code, "%s", code);
    }
    return c;
}

static cx_response_t responses[16];
static int n_responses;

static cx_err_t capture(void *opaque, cx_record_kind_t kind, const char *key, const void *rec) {
    (void)opaque;
    (void)key;
    if (kind == CX_REC_RESPONSE && n_responses < 16) responses[n_responses++] = *(const cx_response_t *)rec;
    return CX_OK;
}

static cx_config_t cfg;
static cx_campaigns_t *k;
static cx_profile_t pr;

static void setup(void) {
    n_camps = 0;
    n_responses = 0;
    memset(&cfg, 0, sizeof cfg);
    cfg.campaign_wait_days = 7;
    cfg.kpi_interval_ms = 3600000;
    cx_sink_t sink = {NULL, capture};
    k = cx_campaigns_new(&cfg, lookup, NULL, &sink, NULL, 0);
    cr_assert_not_null(k);
    cr_assert_eq(cx_campaigns_assign(k, NULL, 0, INT64_MIN, NULL, 0), CX_OK);
    cx_profile_init(&pr, "u1");
    cx_campaign_t *c1 = add_camp("C1", CX_CT_WIN_BACK, 14, "WB10");
    c1->promoted_title_ids = titles_c1;
    c1->n_promoted = 1;
    add_camp("C2", CX_CT_NEWSLETTER, 7, NULL);
}

static void teardown(void) {
    cx_profile_clear(&pr);
    cx_campaigns_destroy(k);
}

static cx_event_t send_ev(const char *eid, const char *cid, cx_group_t g, int64_t ts) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_EMAIL_SEND;
    snprintf(ev.event_id, sizeof ev.event_id, "%s", eid);
    snprintf(ev.customer_id, sizeof ev.customer_id, "u1");
    ev.ts_ms = ts;
    snprintf(ev.u.email_send.campaign_id, sizeof ev.u.email_send.campaign_id, "%s", cid);
    ev.u.email_send.group = g;
    return ev;
}

static cx_event_t purchase_ev(const char *eid, int64_t ts, int64_t amount, const char *code) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PURCHASE;
    snprintf(ev.event_id, sizeof ev.event_id, "%s", eid);
    snprintf(ev.customer_id, sizeof ev.customer_id, "u1");
    ev.ts_ms = ts;
    ev.u.purchase.amount_minor = amount;
    memcpy(ev.u.purchase.currency, "EUR", 4);
    if (code) {
        ev.has_campaign_code = true;
        snprintf(ev.campaign_code, sizeof ev.campaign_code, "%s", code);
    }
    return ev;
}

static cx_event_t play_ev(const char *eid, int64_t ts, const char *title) {
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = CX_EV_PLAY;
    snprintf(ev.event_id, sizeof ev.event_id, "%s", eid);
    snprintf(ev.customer_id, sizeof ev.customer_id, "u1");
    ev.ts_ms = ts;
    snprintf(ev.u.play.title_id, sizeof ev.u.play.title_id, "%s", title);
    ev.u.play.seconds_watched = 600;
    return ev;
}

static void do_send(const char *eid, const char *cid, cx_group_t g, int64_t ts) {
    cx_event_t ev = send_ev(eid, cid, g, ts);
    cr_assert_eq(cx_campaigns_send(k, 0, &pr, &ev), CX_OK);
}

/* Runs a transaction; returns the attributed campaign ("" when none). */
static const char *do_tx(const cx_event_t *ev) {
    static char got[CX_ID_MAX + 1];
    cr_assert_eq(cx_campaigns_transaction(k, 0, &pr, ev, false, got), CX_OK);
    return got;
}

static void fire_timers_until(int64_t wm) {
    while (pr.n_sends) {
        int64_t due = 0;
        for (unsigned i = 0; i < pr.n_sends; i++)
            if (pr.sends[i].end_ts_ms && (!due || pr.sends[i].end_ts_ms < due)) due = pr.sends[i].end_ts_ms;
        if (!due || due > wm) return;
        cr_assert_eq(cx_campaigns_timer(k, 0, &pr, due), CX_OK);
    }
}

TestSuite(attribution, .init = setup, .fini = teardown);

/* ---- pure rules ---- */

Test(attribution, window_due_is_one_ms_after_the_inclusive_end) {
    cr_assert_eq(cx_attr_window_due(T0, 14), T0 + 14 * D + 1);
    cr_assert(cx_attr_in_window(T0, cx_attr_window_due(T0, 14), T0));
    cr_assert(cx_attr_in_window(T0, cx_attr_window_due(T0, 14), T0 + 14 * D));
    cr_assert_not(cx_attr_in_window(T0, cx_attr_window_due(T0, 14), T0 + 14 * D + 1));
    cr_assert_not(cx_attr_in_window(T0, cx_attr_window_due(T0, 14), T0 - 1));
}

Test(attribution, zero_day_window_holds_only_the_send_instant) {
    int64_t due = cx_attr_window_due(T0, 0);
    cr_assert(cx_attr_in_window(T0, due, T0));
    cr_assert_not(cx_attr_in_window(T0, due, T0 + 1));
}

Test(attribution, code_of_send_or_campaign_or_promoted_title_is_hard) {
    cx_open_send_t s;
    memset(&s, 0, sizeof s);
    s.has_code = true;
    cr_assert_eq(cx_sid_set(&s.code, "PERSONAL1"), CX_OK);
    cx_event_t a = purchase_ev("a", T0, 1, "PERSONAL1"), b = purchase_ev("b", T0, 1, "WB10"),
               c = purchase_ev("c", T0, 1, "OTHER"), d = play_ev("d", T0, "T9"), e = play_ev("e", T0, "T1");
    cr_assert(cx_attr_is_hard(&a, &s, &camps[0]));
    cr_assert(cx_attr_is_hard(&b, &s, &camps[0]));
    cr_assert_not(cx_attr_is_hard(&c, &s, &camps[0]));
    cr_assert(cx_attr_is_hard(&d, &s, &camps[0]));
    cr_assert_not(cx_attr_is_hard(&e, &s, &camps[0]));
    cx_open_send_clear(&s);
    cr_assert_not(cx_attr_is_hard(&b, &s, NULL), "the campaign's code needs the campaign");
}

/* ---- through the per-customer rules ---- */

Test(attribution, response_exactly_at_window_end_is_inside) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    cx_event_t ev = purchase_ev("b1", T0 + 14 * D, 999, NULL);
    fire_timers_until(ev.ts_ms);
    cr_assert_str_eq(do_tx(&ev), "C1");
    cr_assert_eq(n_responses, 1);
    cr_assert_eq(responses[0].latency_ms, 14 * D);
    cr_assert_eq(responses[0].response_type, CX_RESP_SOFT);
    cr_assert_eq(responses[0].amount_minor, 999);
    cr_assert_str_eq(responses[0].response_id, "b1");
    cr_assert_str_eq(responses[0].send_event_id, "s1");
}

Test(attribution, response_one_ms_after_window_end_is_outside) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    cx_event_t ev = purchase_ev("b1", T0 + 14 * D + 1, 999, "WB10");
    fire_timers_until(ev.ts_ms);
    cr_assert(pr.sends[0].responded & CX_SEND_CLOSED, "the window-end timer closed the send");
    cr_assert_str_eq(do_tx(&ev), "");
    cr_assert_eq(n_responses, 0);
}

Test(attribution, response_before_send_is_outside) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    cx_event_t ev = purchase_ev("b1", T0 - 1, 999, "WB10");
    cr_assert_str_eq(do_tx(&ev), "");
}

Test(attribution, code_used_outside_window_counts_soft_for_the_open_one) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    do_send("s2", "C2", CX_GROUP_TEST, T0 + 20 * D);
    cx_event_t ev = purchase_ev("b1", T0 + 21 * D, 500, "WB10"); /* C1's code, C1's window is over */
    fire_timers_until(ev.ts_ms);
    cr_assert_str_eq(do_tx(&ev), "C2");
    cr_assert_eq(responses[0].response_type, CX_RESP_SOFT);
}

Test(attribution, overlapping_windows_go_to_the_latest_send) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    do_send("s2", "C2", CX_GROUP_TEST, T0 + D);
    cx_event_t ev = purchase_ev("b1", T0 + 2 * D, 100, NULL);
    cr_assert_str_eq(do_tx(&ev), "C2");
    cr_assert_eq(responses[0].latency_ms, D);
}

Test(attribution, purchase_hard_for_one_campaign_and_soft_for_another_goes_to_the_hard_one) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    do_send("s2", "C2", CX_GROUP_TEST, T0 + D); /* later: last touch would pick it */
    cx_event_t ev = purchase_ev("b1", T0 + 2 * D, 100, "WB10");
    cr_assert_str_eq(do_tx(&ev), "C1");
    cr_assert_eq(responses[0].response_type, CX_RESP_HARD);
}

Test(attribution, promoted_title_play_is_a_hard_retrieval) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    cx_event_t ev = play_ev("p1", T0 + D, "T9");
    cr_assert_str_eq(do_tx(&ev), "C1");
    cr_assert_eq(responses[0].action, CX_RESP_ACTION_PLAY);
    cr_assert_eq(responses[0].response_type, CX_RESP_HARD);
    cx_kpi_t kpi;
    cr_assert(cx_campaigns_kpi(k, "C1", &kpi));
    cr_assert_eq(kpi.retrievals, 1);
    cr_assert_eq(kpi.responders_test_hard, 1);
}

Test(attribution, control_group_is_measured_the_same_way) {
    do_send("s1", "C1", CX_GROUP_CONTROL, T0);
    cx_event_t ev = purchase_ev("b1", T0 + D, 700, "WB10");
    cr_assert_str_eq(do_tx(&ev), "C1");
    cr_assert_eq(responses[0].group, CX_GROUP_CONTROL);
    cx_kpi_t kpi;
    cr_assert(cx_campaigns_kpi(k, "C1", &kpi));
    cr_assert_eq(kpi.sent_control, 1);
    cr_assert_eq(kpi.sent_test, 0);
    cr_assert_eq(kpi.responders_control_any, 1);
    cr_assert_eq(kpi.responders_control_hard, 1);
    cr_assert_eq(kpi.purchases, 0, "purchases and turnover count the test group only");
    cr_assert_eq(kpi.turnover_minor, 0);
}

Test(attribution, a_response_event_is_attributed_once_and_a_responder_counted_once) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    cx_event_t a = purchase_ev("b1", T0 + D, 100, NULL), b = purchase_ev("b2", T0 + 2 * D, 200, "WB10");
    do_tx(&a);
    do_tx(&b);
    cx_kpi_t kpi;
    cx_campaigns_kpi(k, "C1", &kpi);
    cr_assert_eq(n_responses, 2);
    cr_assert_eq(kpi.responders_test_any, 1);
    cr_assert_eq(kpi.responders_test_hard, 1);
    cr_assert_eq(kpi.purchases, 2);
    cr_assert_eq(kpi.turnover_minor, 300);
    cr_assert_eq(kpi.revenue_per_responder_minor, 300);
}

Test(attribution, repeated_send_restarts_the_window_and_the_latest_send_decides_the_group) {
    do_send("s1", "C1", CX_GROUP_TEST, T0);
    do_send("s2", "C1", CX_GROUP_CONTROL, T0 + 10 * D);
    cx_kpi_t kpi;
    cx_campaigns_kpi(k, "C1", &kpi);
    cr_assert_eq(kpi.sent_test, 0);
    cr_assert_eq(kpi.sent_control, 1);
    cr_assert_eq(pr.n_sends, 1);
    cr_assert_eq(pr.sends[0].end_ts_ms, T0 + 24 * D + 1);
    cx_event_t ev = purchase_ev("b1", T0 + 20 * D, 100, NULL); /* outside the first window only */
    fire_timers_until(ev.ts_ms);
    cr_assert_str_eq(do_tx(&ev), "C1");
    cr_assert_str_eq(responses[0].send_event_id, "s2");
    cr_assert_eq(responses[0].group, CX_GROUP_CONTROL);
}

Test(attribution, send_of_unknown_campaign_waits_and_is_measured_when_it_arrives) {
    do_send("s1", "C3", CX_GROUP_TEST, T0);
    cr_assert(pr.sends[0].responded & CX_SEND_WAITING);
    cr_assert_eq(pr.sends[0].end_ts_ms, T0 + 7 * D + 1, "bounded by campaign.wait_days");
    add_camp("C3", CX_CT_CROSS_SELL, 3, NULL);
    cx_event_t ev = purchase_ev("b1", T0 + 2 * D, 100, NULL);
    cr_assert_str_eq(do_tx(&ev), "C3");
    cr_assert_eq(pr.sends[0].end_ts_ms, T0 + 3 * D + 1);
    cx_kpi_t kpi;
    cx_campaigns_kpi(k, "C3", &kpi);
    cr_assert_eq(kpi.sent_test, 1);
    cr_assert_eq(kpi.responders_test_any, 1);
}

Test(attribution, send_still_unknown_after_the_wait_is_dropped) {
    do_send("s1", "C3", CX_GROUP_TEST, T0);
    fire_timers_until(T0 + 7 * D + 1);
    cr_assert_eq(pr.n_sends, 0);
    add_camp("C3", CX_CT_CROSS_SELL, 30, NULL);
    cx_event_t ev = purchase_ev("b1", T0 + 8 * D, 100, NULL);
    cr_assert_str_eq(do_tx(&ev), "");
    cx_kpi_t kpi;
    cx_campaigns_kpi(k, "C3", &kpi);
    cr_assert_eq(kpi.sent_test, 0);
}

Test(attribution, first_transaction_response_sets_the_acquisition_campaign) {
    do_send("s1", "C2", CX_GROUP_TEST, T0);
    cr_assert(pr.newsletter_recipient, "a TEST send of a NEWSLETTER campaign");
    cx_event_t ev = purchase_ev("b1", T0 + D, 100, NULL);
    char got[CX_ID_MAX + 1];
    cr_assert_eq(cx_campaigns_transaction(k, 0, &pr, &ev, true, got), CX_OK);
    cr_assert(pr.has_acquisition);
    cr_assert_str_eq(cx_sid_str(&pr.acquisition_campaign_id), "C2");
}

Test(attribution, control_send_of_a_newsletter_does_not_make_a_recipient) {
    do_send("s1", "C2", CX_GROUP_CONTROL, T0);
    cr_assert_not(pr.newsletter_recipient);
}

Test(attribution, full_send_list_reuses_closed_slots_first) {
    char id[16];
    add_camp("X0", CX_CT_OTHER, 1, NULL); /* X1..X7 stay unknown: their sends wait */
    for (int i = 0; i < CX_OPEN_SENDS_MAX; i++) {
        snprintf(id, sizeof id, "X%d", i);
        do_send(id, id, CX_GROUP_TEST, T0 + i);
    }
    cr_assert_eq(pr.n_sends, CX_OPEN_SENDS_MAX);
    fire_timers_until(T0 + 2 * D); /* X0's one-day window closes */
    do_send("s9", "C1", CX_GROUP_TEST, T0 + 2 * D);
    cr_assert_eq(pr.n_sends, CX_OPEN_SENDS_MAX);
    int have_c1 = 0, have_x0 = 0;
    for (unsigned i = 0; i < pr.n_sends; i++) {
        have_c1 += cx_sid_eq(&pr.sends[i].campaign_id, "C1");
        have_x0 += cx_sid_eq(&pr.sends[i].campaign_id, "X0");
    }
    cr_assert_eq(have_c1, 1);
    cr_assert_eq(have_x0, 0, "the closed send's slot was reused, the waiting ones kept");
}

/* Ids longer than a profile keeps inline (CX_SID_INLINE): sends that wait and are dropped (removed from
 * the middle of the list), a closed slot reused, and a response that names its campaign and send by
 * their full ids; ASan checks that every id is freed once. */
Test(attribution, long_ids_through_waiting_drop_reuse_and_response) {
    char cid[CX_ID_MAX + 1], eid[CX_ID_MAX + 1], keep_c[CX_ID_MAX + 1], keep_e[CX_ID_MAX + 1];
    add_camp("lapsed-subscribers-win-back-2024-autumn", CX_CT_WIN_BACK, 1, NULL);
    for (int i = 0; i < CX_OPEN_SENDS_MAX; i++) {
        snprintf(cid, sizeof cid, "unknown-campaign-with-a-long-name-%02d", i);
        snprintf(eid, sizeof eid, "send-event-00000000-0000-0000-0000-%012d", i);
        if (i == 3) snprintf(cid, sizeof cid, "lapsed-subscribers-win-back-2024-autumn");
        do_send(eid, cid, CX_GROUP_TEST, T0 + i);
        if (i == 6) {
            snprintf(keep_c, sizeof keep_c, "%s", cid);
            snprintf(keep_e, sizeof keep_e, "%s", eid);
        }
    }
    add_camp("unknown-campaign-with-a-long-name-06", CX_CT_OTHER, 30, NULL); /* known now: stops waiting */
    fire_timers_until(T0 + 7 * D + 10); /* the win-back send closes; the waiting ones are dropped */
    cr_assert_eq(pr.n_sends, 2, "the closed send and the one whose campaign arrived");
    do_send("send-event-ffffffff-ffff-ffff-ffff-ffffffffffff", "C1", CX_GROUP_TEST, T0 + 8 * D);
    cr_assert_eq(pr.n_sends, 3);
    cx_event_t ev = purchase_ev("b1", T0 + 8 * D + 1, 100, NULL);
    cr_assert_str_eq(do_tx(&ev), "C1", "the latest open send");
    cr_assert_str_eq(responses[n_responses - 1].send_event_id, "send-event-ffffffff-ffff-ffff-ffff-ffffffffffff");
    bool kept = false;
    for (unsigned i = 0; i < pr.n_sends; i++)
        if (cx_sid_eq(&pr.sends[i].campaign_id, keep_c)) {
            kept = true;
            cr_assert_str_eq(cx_sid_str(&pr.sends[i].send_event_id), keep_e, "moved down intact");
        }
    cr_assert(kept);
}

/* ---- contacts and exclusion ---- */

static void add_contact(cx_profile_t *p, const char *cid, cx_campaign_type_t t, cx_group_t g, int64_t ts) {
    cx_pcontact_t *c = &p->contacts[p->n_contacts++];
    cr_assert_eq(cx_sid_set(&c->campaign_id, cid), CX_OK);
    c->campaign_type = t;
    c->group = g;
    c->ts_ms = ts;
}

Test(attribution, win_back_within_exclusion_weeks_is_not_eligible) {
    int32_t weeks[CX_CT__COUNT] = {0, 4, 0, 0, 0};
    char last[CX_ID_MAX + 1];
    add_contact(&pr, "WB", CX_CT_WIN_BACK, CX_GROUP_TEST, T0);
    add_contact(&pr, "NL", CX_CT_NEWSLETTER, CX_GROUP_TEST, T0 + D);
    cr_assert_not(cx_contacts_eligible(&pr, weeks, T0 + 28 * D - 1, last));
    cr_assert_str_eq(last, "WB", "names the excluding campaign");
    cr_assert(cx_contacts_eligible(&pr, weeks, T0 + 28 * D, last), "exactly 4 weeks later is outside");
    cr_assert_str_eq(last, "NL", "else the latest contact");
}

Test(attribution, control_contacts_and_zero_week_types_do_not_exclude) {
    int32_t weeks[CX_CT__COUNT] = {0, 4, 0, 0, 0};
    char last[CX_ID_MAX + 1] = "junk";
    cr_assert(cx_contacts_eligible(&pr, weeks, T0, last));
    cr_assert_str_eq(last, "");
    add_contact(&pr, "WB", CX_CT_WIN_BACK, CX_GROUP_CONTROL, T0);
    add_contact(&pr, "NL", CX_CT_NEWSLETTER, CX_GROUP_TEST, T0);
    cr_assert(cx_contacts_eligible(&pr, weeks, T0 + D, NULL));
}

Test(attribution, latest_by_type_still_excludes_after_the_contact_list_rolled_over) {
    int32_t weeks[CX_CT__COUNT] = {0, 4, 0, 0, 0};
    pr.latest_by_type[CX_CT_WIN_BACK] =
        (cx_pcontact_t){.campaign_type = CX_CT_WIN_BACK, .group = CX_GROUP_TEST, .ts_ms = T0};
    cr_assert_eq(cx_sid_set(&pr.latest_by_type[CX_CT_WIN_BACK].campaign_id, "WB"), CX_OK);
    pr.has_latest_by_type = 1u << CX_CT_WIN_BACK;
    for (int i = 0; i < CX_CONTACTS_KEPT; i++)
        add_contact(&pr, "NL", CX_CT_NEWSLETTER, CX_GROUP_TEST, T0 + 1 + i);
    cr_assert_not(cx_contacts_eligible(&pr, weeks, T0 + D, NULL));
}
