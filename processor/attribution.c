/*
 * attribution.c — window test, hard/soft classification, last-touch choice of the attributed send,
 * and the contact-history exclusion test (see attribution.h for the contract).
 */
#include "attribution.h"

#include <string.h>

int64_t cx_attr_window_due(int64_t send_ts_ms, int32_t observation_days) {
    return send_ts_ms + (int64_t)observation_days * CX_DAY_MS + 1;
}

bool cx_attr_in_window(int64_t send_ts_ms, int64_t window_due_ms, int64_t ts_ms) {
    return ts_ms >= send_ts_ms && ts_ms < window_due_ms;
}

static const char *title_of(const cx_event_t *ev) {
    if (ev->type == CX_EV_PLAY) return ev->u.play.title_id;
    if (ev->type == CX_EV_PURCHASE && ev->u.purchase.has_title_id) return ev->u.purchase.title_id;
    return NULL;
}

bool cx_attr_is_hard(const cx_event_t *ev, const cx_open_send_t *send, const cx_campaign_t *camp) {
    if (ev->has_campaign_code) {
        if (send->has_code && cx_sid_eq(&send->code, ev->campaign_code)) return true;
        if (camp && camp->has_campaign_code && strcmp(ev->campaign_code, camp->campaign_code) == 0) return true;
    }
    const char *title = title_of(ev);
    if (camp && title && title[0])
        for (size_t i = 0; i < camp->n_promoted; i++)
            if (camp->promoted_title_ids[i] && strcmp(camp->promoted_title_ids[i], title) == 0) return true;
    return false;
}

int cx_attr_choose(const cx_open_send_t *sends, const cx_campaign_t *const *camps, unsigned n, const cx_event_t *ev,
                   bool *hard) {
    int best_hard = -1, best_any = -1;
    for (unsigned i = 0; i < n; i++) {
        const cx_open_send_t *s = &sends[i];
        if (s->responded & (CX_SEND_WAITING | CX_SEND_CLOSED)) continue;
        if (!cx_attr_in_window(s->ts_ms, s->end_ts_ms, ev->ts_ms)) continue;
        /* `>=`: at equal send times the later slot (the one written later) wins */
        if (best_any < 0 || s->ts_ms >= sends[best_any].ts_ms) best_any = (int)i;
        if (cx_attr_is_hard(ev, s, camps ? camps[i] : NULL) && (best_hard < 0 || s->ts_ms >= sends[best_hard].ts_ms))
            best_hard = (int)i;
    }
    *hard = best_hard >= 0;
    return best_hard >= 0 ? best_hard : best_any;
}

bool cx_contacts_eligible(const cx_profile_t *pr, const int32_t exclusion_weeks[CX_CT__COUNT], int64_t now_ms,
                          char *last_contact_campaign_id) {
    const cx_pcontact_t *latest = NULL, *excluding = NULL;
    const cx_pcontact_t *cand[CX_CONTACTS_KEPT + CX_CT__COUNT];
    unsigned n = 0;
    for (unsigned i = 0; i < pr->n_contacts && i < CX_CONTACTS_KEPT; i++)
        cand[n++] = &pr->contacts[i];
    for (int t = 0; t < CX_CT__COUNT; t++)
        if (pr->has_latest_by_type & (1u << t)) cand[n++] = &pr->latest_by_type[t];
    for (unsigned i = 0; i < n; i++) {
        const cx_pcontact_t *c = cand[i];
        if (c->group != CX_GROUP_TEST) continue; /* a control-group member was not mailed */
        if (!latest || c->ts_ms > latest->ts_ms) latest = c;
        unsigned t = (unsigned)c->campaign_type;
        int64_t weeks = t < CX_CT__COUNT ? exclusion_weeks[t] : 0;
        if (weeks > 0 && c->ts_ms <= now_ms && now_ms - c->ts_ms < weeks * 7 * CX_DAY_MS &&
            (!excluding || c->ts_ms > excluding->ts_ms))
            excluding = c;
    }
    if (last_contact_campaign_id) {
        const cx_pcontact_t *show = excluding ? excluding : latest;
        if (show)
            cx_sid_get(&show->campaign_id, last_contact_campaign_id, CX_ID_MAX + 1);
        else
            last_contact_campaign_id[0] = 0;
    }
    return excluding == NULL;
}
