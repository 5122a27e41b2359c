/*
 * event.h — the typed records of DESIGN §5 as plain C structs: the input events the decoder fills
 * and the output records the rules fill. Codecs (Avro wire format, replay JSON) convert between
 * these and bytes; nothing else in the pipeline sees a wire format.
 *
 * Ownership: fixed-size fields are inline. The few variable-length fields (survey comment, campaign
 * name and promoted titles) are noted at the field: borrowed pointers stay valid until the next
 * decode into the same decoder; cx_campaign_t owns its arrays (cx_campaign_clear frees them).
 */
#ifndef CX_EVENT_H
#define CX_EVENT_H

#include "cx.h"

#define CX_SHORT_MAX 64 /* genre, device, touchpoint */

/* Values are the tie-break order of the event-time merge (DESIGN §2): email_send, purchase, play,
 * survey. */
typedef enum cx_event_type {
    CX_EV_EMAIL_SEND = 0,
    CX_EV_PURCHASE = 1,
    CX_EV_PLAY = 2,
    CX_EV_SURVEY = 3,
    CX_EV_CAMPAIGN = 4, /* control record, not an event */
    CX_EV__COUNT
} cx_event_type_t;
const char *cx_event_type_name(cx_event_type_t t); /* "play", "purchase", ... (replay names) */
int cx_event_type_from_name(const char *name);     /* -1 if unknown */

typedef enum {
    CX_PK_RENTAL = 0,
    CX_PK_PURCHASE,
    CX_PK_SUBSCRIPTION,
    CX_PK_PACKAGE_EXTENSION,
    CX_PK__COUNT
} cx_purchase_kind_t;
typedef enum { CX_GROUP_TEST = 0, CX_GROUP_CONTROL, CX_GROUP__COUNT } cx_group_t;
typedef enum { CX_CH_EMAIL = 0, CX_CH_SMS, CX_CH_PUSH, CX_CH_IN_APP, CX_CH_POST, CX_CH__COUNT } cx_channel_t;
typedef enum {
    CX_CT_NEWSLETTER = 0,
    CX_CT_WIN_BACK,
    CX_CT_CROSS_SELL,
    CX_CT_ONBOARDING,
    CX_CT_OTHER,
    CX_CT__COUNT
} cx_campaign_type_t;
typedef enum {
    CX_TRIG_STOPPED_STREAMING = 0,
    CX_TRIG_ENGAGEMENT_DROP,
    CX_TRIG_CHURN_RISK,
    CX_TRIG__COUNT
} cx_trigger_kind_t;
typedef enum { CX_ACT_LOGIN_REMINDER = 0, CX_ACT_NEW_RELEASE, CX_ACT_WIN_BACK_OFFER, CX_ACT__COUNT } cx_action_t;
typedef enum { CX_RESP_HARD = 0, CX_RESP_SOFT } cx_response_type_t;
typedef enum { CX_RESP_ACTION_PLAY = 0, CX_RESP_ACTION_PURCHASE } cx_response_action_t;

/* Enum symbols exactly as in the .avsc files. */
extern const char *const cx_purchase_kind_names[CX_PK__COUNT];
extern const char *const cx_group_names[CX_GROUP__COUNT];
extern const char *const cx_channel_names[CX_CH__COUNT];
extern const char *const cx_campaign_type_names[CX_CT__COUNT];
extern const char *const cx_trigger_kind_names[CX_TRIG__COUNT];
extern const char *const cx_action_names[CX_ACT__COUNT];
/* Index of `name` in `names[0..n)`, or -1. */
int cx_enum_lookup(const char *const *names, int n, const char *name);

typedef struct cx_play {
    char title_id[CX_ID_MAX + 1];
    bool has_genre;
    char genre[CX_SHORT_MAX + 1];
    int32_t seconds_watched; /* >= 0 */
    bool has_device;
    char device[CX_SHORT_MAX + 1];
} cx_play_t;

typedef struct cx_purchase {
    bool has_title_id;
    char title_id[CX_ID_MAX + 1];
    cx_purchase_kind_t kind;
    int64_t amount_minor; /* >= 0 */
    char currency[4];     /* ISO 4217: three upper-case letters */
} cx_purchase_t;

typedef struct cx_email_send {
    char campaign_id[CX_ID_MAX + 1];
    cx_group_t group;
    cx_channel_t channel;
} cx_email_send_t;

typedef struct cx_survey {
    char survey_id[CX_ID_MAX + 1];
    int32_t score; /* 0..10 */
    char touchpoint[CX_SHORT_MAX + 1];
    bool has_comment;
    const char *comment; /* borrowed from the decoder; UTF-8, not NUL-terminated */
    size_t comment_len;
} cx_survey_t;

/* One input event (play, purchase, email_send, survey). */
typedef struct cx_event {
    cx_event_type_t type;
    char event_id[CX_ID_MAX + 1];
    char customer_id[CX_ID_MAX + 1];
    int64_t ts_ms;
    bool has_campaign_code; /* play, purchase, email_send */
    char campaign_code[CX_ID_MAX + 1];
    union {
        cx_play_t play;
        cx_purchase_t purchase;
        cx_email_send_t email_send;
        cx_survey_t survey;
    } u;
} cx_event_t;

/* Campaign control record (cx.campaigns). Owns name and promoted_title_ids. */
typedef struct cx_campaign {
    char campaign_id[CX_ID_MAX + 1];
    char *name;
    cx_campaign_type_t type;
    int64_t start_ts_ms;
    int64_t end_ts_ms;
    int32_t observation_days;
    char **promoted_title_ids;
    size_t n_promoted;
    bool has_campaign_code;
    char campaign_code[CX_ID_MAX + 1];
} cx_campaign_t;
void cx_campaign_clear(cx_campaign_t *c); /* frees owned arrays, zeroes the struct; NULL ok */
cx_err_t cx_campaign_copy(cx_campaign_t *dst, const cx_campaign_t *src);

/* ---- outputs. A `has_` flag false means the Avro union's null branch. ---- */

typedef struct cx_segment_change {
    char customer_id[CX_ID_MAX + 1];
    int64_t ts_ms;
    const char *previous_segment; /* NULL: first segment; borrowed segment name */
    const char *segment;          /* borrowed segment name (config lives as long as the pipeline) */
    int32_t r_score, f_score, m_score;
    int32_t recency_days;
    int64_t frequency;
    int64_t monetary_minor;
    char cause[CX_ID_MAX + 32]; /* event id, "timer:<due ts>" or "rescore:<ts>" */
    bool has_p_alive;
    double p_alive;
    bool has_clv_minor;
    int64_t clv_minor;
} cx_segment_change_t;

typedef struct cx_trigger {
    char customer_id[CX_ID_MAX + 1];
    int64_t ts_ms;
    char trigger_id[CX_ID_MAX + 64]; /* <customer_id>:<kind>:<due ts> */
    cx_trigger_kind_t kind;
    bool has_days_since_last_play;
    int32_t days_since_last_play;
    bool has_usual_gap_days;
    double usual_gap_days;
    bool has_p_alive;
    double p_alive;
    const char *segment; /* borrowed */
    cx_action_t suggested_action;
    bool has_top_genre;
    char top_genre[CX_SHORT_MAX + 1];
    bool eligible;
    bool has_last_contact_campaign_id;
    char last_contact_campaign_id[CX_ID_MAX + 1];
} cx_trigger_t;

typedef struct cx_response {
    char customer_id[CX_ID_MAX + 1];
    int64_t ts_ms;
    char response_id[CX_ID_MAX + 1]; /* = response_event_id */
    char campaign_id[CX_ID_MAX + 1];
    char send_event_id[CX_ID_MAX + 1];
    char response_event_id[CX_ID_MAX + 1];
    cx_response_type_t response_type;
    cx_response_action_t action;
    int64_t amount_minor;
    cx_group_t group;
    int64_t latency_ms;
} cx_response_t;

typedef struct cx_kpi {
    char campaign_id[CX_ID_MAX + 1];
    int64_t ts_ms;
    int64_t as_of_ts_ms;
    int64_t sent_test, sent_control;
    int64_t responders_test_any, responders_test_hard;
    int64_t responders_control_any, responders_control_hard;
    int64_t retrievals, purchases, turnover_minor;
    int64_t revenue_per_responder_minor;
    double response_rate_test, response_rate_control;
    bool has_lift;
    double lift;
    bool has_lift_p_value;
    double lift_p_value;
    bool closed;
} cx_kpi_t;

/* The customer context carried by cx.enriched, as of the event. */
typedef struct cx_enriched {
    const cx_event_t *event; /* borrowed: the accepted input event */
    bool has_segment;
    const char *segment;
    int32_t r_score, f_score, m_score; /* 0 when no segment yet */
    bool has_nps_last;
    int32_t nps_last;
    bool has_p_alive;
    double p_alive;
    bool has_acquisition_campaign_id;
    char acquisition_campaign_id[CX_ID_MAX + 1];
    bool newsletter_recipient;
    bool has_response_campaign_id;
    char response_campaign_id[CX_ID_MAX + 1];
} cx_enriched_t;

/* One contact (a TEST send) in a customer's contact history. */
typedef struct cx_contact {
    char campaign_id[CX_ID_MAX + 1];
    cx_campaign_type_t campaign_type; /* CX_CT_OTHER while the campaign is unknown */
    cx_channel_t channel;
    cx_group_t group;
    int64_t ts_ms;
} cx_contact_t;

#define CX_PROFILE_CONTACTS_OUT (8 + CX_CT__COUNT)

/* The Profile record (schema id 15, /customers/{id}, profiles.jsonl): a flat view computed from the
 * stored profile as of a watermark. */
typedef struct cx_profile_out {
    char customer_id[CX_ID_MAX + 1];
    bool has_tx; /* false: first/last_transaction_ts, recency_days, scores, segment are null */
    int64_t first_transaction_ts;
    int64_t last_transaction_ts;
    bool has_last_play_ts;
    int64_t last_play_ts;
    int32_t recency_days;
    int64_t frequency;
    int64_t monetary_minor;
    int32_t r_score, f_score, m_score;
    const char *segment; /* borrowed; NULL when !has_tx */
    int64_t purchases_total;
    int64_t revenue_total_minor;
    int64_t plays_total;
    bool has_nps_last;
    int32_t nps_last;
    int64_t nps_count;
    int64_t bgnbd_x;
    int64_t repeat_revenue_minor;
    int64_t bgnbd_t_x_days;
    int64_t bgnbd_T_days;
    bool has_p_alive; /* null only without transactions */
    double p_alive;
    double expected_transactions_90d;
    int64_t clv_minor;
    bool has_acquisition_campaign_id;
    char acquisition_campaign_id[CX_ID_MAX + 1];
    bool newsletter_recipient;
    size_t n_contacts;
    cx_contact_t contacts[CX_PROFILE_CONTACTS_OUT];
} cx_profile_out_t;

#endif
