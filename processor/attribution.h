/*
 * attribution.h — the pure rules of campaign response (DESIGN §6): whether an event falls inside a
 * send's observation window, whether it is a hard or soft response, which one open send a
 * transaction is attributed to, and the contact-history exclusion test that triggers use
 * (`eligible`). No state, no I/O, no allocation: every function reads what it is given.
 *
 * Send flags (cx_open_send_t.responded, a byte kept in the profile encoding): bit 0 the customer
 * has an attributed response to this send's campaign, bit 1 a hard one, bit 2 the send waits for
 * its campaign record (end_ts_ms is then the wait expiry), bit 3 the window has closed (the slot is
 * kept, with end_ts_ms 0, only to keep the recipient distinct; it is reused first when full).
 *
 * Ownership: all pointers are borrowed for the call.
 */
#ifndef CX_ATTRIBUTION_H
#define CX_ATTRIBUTION_H

#include "event.h"
#include "profile.h"

#define CX_SEND_RESPONDED 0x01u
#define CX_SEND_HARD      0x02u
#define CX_SEND_WAITING   0x04u
#define CX_SEND_CLOSED    0x08u

/* The window-end due time of a send at send_ts_ms: s + observation_days × 86,400,000 + 1, the first
 * instant outside the (inclusive) window [s, s + observation_days days]. */
int64_t cx_attr_window_due(int64_t send_ts_ms, int32_t observation_days);

/* True if ts_ms lies in [send_ts_ms, window_due_ms): inside the inclusive window. */
bool cx_attr_in_window(int64_t send_ts_ms, int64_t window_due_ms, int64_t ts_ms);

/* True if the transaction `ev` (play or purchase) is a hard response to `send` of campaign `camp`
 * (camp may be NULL: only the send's own code counts): its campaign_code equals the send's code or
 * the campaign's code, or it plays/buys one of the campaign's promoted titles. Window not checked. */
bool cx_attr_is_hard(const cx_event_t *ev, const cx_open_send_t *send, const cx_campaign_t *camp);

/* Chooses the send a transaction is attributed to. sends[i] is considered when it is open (neither
 * waiting nor closed) and ev->ts_ms is inside its window; camps[i] is its campaign (NULL: unknown).
 * Rule: the latest (by send ts, then by index) send the event is hard for; otherwise the latest send
 * whose window contains it. Returns the index, or -1 when none; *hard tells which rule chose it. */
int cx_attr_choose(const cx_open_send_t *sends, const cx_campaign_t *const *camps, unsigned n, const cx_event_t *ev,
                   bool *hard);

/* The exclusion test of triggers (DESIGN §6 "Contacts and exclusion"): false if a contact (TEST
 * send) of a campaign type t with exclusion_weeks[t] > 0 reached the customer within the last
 * exclusion_weeks[t] × 7 days before now_ms (now − contact ts < weeks × 7 × 86,400,000).
 * last_contact_campaign_id (may be NULL; CX_ID_MAX + 1 bytes) receives, when the customer is not
 * eligible, the campaign of the latest excluding contact, otherwise the latest contact of any type;
 * an empty string when the customer has no contact. Looks at the last contacts and the latest
 * contact per type, so a contact pushed out of the last-N list still excludes. */
bool cx_contacts_eligible(const cx_profile_t *pr, const int32_t exclusion_weeks[CX_CT__COUNT], int64_t now_ms,
                          char *last_contact_campaign_id);

#endif
