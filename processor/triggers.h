/*
 * triggers.h — the disengagement rules of DESIGN §6 as pure functions over a customer profile:
 * the usual gap between play days and its regularity, the due times of STOPPED_STREAMING,
 * ENGAGEMENT_DROP and CHURN_RISK (computed when a play or transaction arrives, so silence becomes
 * a timer), the decision at the due time (condition still true, cooldown, deterministic id) and
 * the trigger record's content (suggested action, top genre, eligibility by contact history).
 *
 * The pipeline owns the timers: it calls cx_triggers_arm() after every applied transaction and
 * cx_triggers_decide() when one of the three due times has come (in the order of cx_trigger_kind_t,
 * after the RFM rescore). Which rules apply to whom (docs/triggers.md):
 *   - STOPPED_STREAMING and ENGAGEMENT_DROP: customers with >= inactivity.min_play_days play days
 *     (their cadence is known);
 *   - CHURN_RISK: customers with a transaction whose cadence is not known (fewer play days), since
 *     for a streamer the cadence rule is the sharper and P(alive) of the population model would
 *     pre-empt it through the shared cooldown; one-time customers (x = 0) never, P(alive) = 1.
 *
 * Nothing here allocates, keeps state or logs; profiles and configuration are borrowed for the call.
 */
#ifndef CX_TRIGGERS_H
#define CX_TRIGGERS_H

#include "bgnbd.h"
#include "config.h"
#include "event.h"
#include "gammagamma.h"
#include "profile.h"

#define CX_TRIGGERS_RECENT_DAYS        28   /* ENGAGEMENT_DROP: the recent window */
#define CX_TRIGGERS_BASELINE_WEEKS     12   /* ENGAGEMENT_DROP: the baseline before it, at most */
#define CX_TRIGGERS_CHURN_HORIZON_DAYS 3650 /* CHURN_RISK is not armed further ahead than this */

/* The usual gap: median of the gaps between the kept play days (the last CX_PLAY_DAYS_KEPT), in
 * days; with an even number of gaps the mean of the two middle ones. False with fewer than two
 * play days. A single binge (several play days close together) moves the median by at most one
 * rank, where a mean would shrink. */
bool cx_triggers_usual_gap(const cx_profile_t *p, double *gap_days);

/* Coefficient of variation (population standard deviation / mean) of the same gaps. False with
 * fewer than two play days. */
bool cx_triggers_gap_cv(const cx_profile_t *p, double *cv);

/* STOPPED_STREAMING due time: 00:00 UTC of last play day + max(inactivity.min_days,
 * ceil(inactivity.k x usual gap)); 0 when the customer has fewer than inactivity.min_play_days
 * play days. */
int64_t cx_triggers_stop_due_ms(const cx_profile_t *p, const cx_config_t *cfg);

/* Whether ENGAGEMENT_DROP's condition holds at 00:00 UTC of `day`: the recent 28 days
 * [day-28, day-1] hold at least one play day but fewer than drop.fraction x 4 x the weekly rate
 * of play days in the h weeks before them, where h = min(12, whole weeks from the first
 * transaction day to the start of the recent window) must be >= drop.min_history_weeks and the
 * rate >= 1 play day a week. Play days come from the buckets (plays > 0). */
bool cx_triggers_drop_holds(const cx_profile_t *p, const cx_config_t *cfg, int32_t day);

/* The first day >= from_day on which, without further plays, the drop condition holds, as its
 * 00:00 UTC in ms; 0 when none (after the last play day + 28 the recent window is empty and the
 * silence is STOPPED_STREAMING's). */
int64_t cx_triggers_drop_due_ms(const cx_profile_t *p, const cx_config_t *cfg, int32_t from_day);

/* P(alive) as of `day` from the BG/NBD counters (x = distinct transaction days - 1, t_x and T in
 * days / unit_days); 1 without repeat transactions or without any transaction. */
double cx_triggers_p_alive(const cx_profile_t *p, const cx_bgnbd_params_t *bg, int unit_days, int32_t day);

/* CLV in minor units as of `day` (expected transactions in clv.horizon_days x Gamma-Gamma spend),
 * as in the profile; 0 without transactions. */
int64_t cx_triggers_clv_minor(const cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg,
                              const cx_gg_params_t *gg, int32_t day);

/* CHURN_RISK due time: 00:00 UTC of the first day >= from_day with P(alive) < churn.p_alive
 * (bisection on T: P(alive) falls as T grows with x and t_x fixed); 0 when x = 0 or no such day
 * within CX_TRIGGERS_CHURN_HORIZON_DAYS of the last transaction day. */
int64_t cx_triggers_churn_due_ms(const cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg,
                                 int32_t from_day);

/* Adds a retrieval-play day (UTC day number) to the last CX_PLAY_DAYS_KEPT distinct ones, kept
 * ascending, and counts it in play_days_total; a day already kept, or older than all of a full set,
 * changes nothing. Returns whether anything changed. */
bool cx_triggers_add_play_day(cx_profile_t *p, int32_t day);

/* Sets the three per-kind due fields of p after a transaction was applied, for a partition whose
 * watermark is wm_ms (a due time at or below it is not armed: no timer fires retroactively;
 * neither is one equal to the due time of the last trigger of that kind, which already fired).
 * `play` says whether the transaction was a play (only plays re-arm STOPPED_STREAMING and
 * ENGAGEMENT_DROP); `new_play_day` false says the play fell on a day that already had plays (the
 * kept play days and the buckets' play days did not change), and then a pending STOPPED_STREAMING
 * due stands, and so does the ENGAGEMENT_DROP due, 0 included, unless it fired since (cleared with
 * cx_triggers_clear_due) or the history's first day moved (p->drop_armed_first): both are functions
 * of the play days, and the search for the drop starts the day after the watermark, which only moves
 * forward, so a pending due (past the watermark) is still the first day the rule holds, and a search
 * that found none still finds none. Returns true when a due field changed. */
bool cx_triggers_arm(cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg, int64_t wm_ms, bool play,
                     bool new_play_day);

/* The due field of a kind (p->stop_due_ms, drop_due_ms, churn_due_ms). */
int64_t *cx_triggers_due_field(cx_profile_t *p, cx_trigger_kind_t kind);
/* Clears the due of a kind when its timer fires (cx_triggers_arm then computes it again on the next
 * play, whatever its day). */
void cx_triggers_clear_due(cx_profile_t *p, cx_trigger_kind_t kind);

/* Contact-history eligibility at ts_ms: false if the latest contact of a campaign type with
 * exclusion.weeks.<TYPE> = w > 0 is less than w weeks before ts_ms. */
bool cx_triggers_eligible(const cx_profile_t *p, const cx_config_t *cfg, int64_t ts_ms);

/* LOGIN_REMINDER when the kept gaps are very regular (CV < trigger.regular_cv over at least 8 play
 * days), else WIN_BACK_OFFER when the M score is >= 4, else NEW_RELEASE. */
cx_action_t cx_triggers_action(const cx_profile_t *p, const cx_config_t *cfg);

/* The genre with the largest count in p->genres (ties: the smaller name); NULL when none. */
const char *cx_triggers_top_genre(const cx_profile_t *p);

/* Decides a due timer of `kind` at `due_ms` (its due field already cleared by the caller): true
 * and *out filled (trigger_id "<customer_id>:<KIND>:<due_ms>", ts = due_ms) when the condition
 * still holds and no trigger was emitted within trigger.cooldown_days before due_ms; then the
 * profile's last_trigger fields are updated. A trigger inside the cooldown is dropped (false).
 * `segment` is borrowed into out->segment. */
bool cx_triggers_decide(cx_profile_t *p, const cx_config_t *cfg, const cx_bgnbd_params_t *bg, cx_trigger_kind_t kind,
                        int64_t due_ms, const char *segment, cx_trigger_t *out);

#endif
