/*
 * test_codec.c — the codec against its contract: every record kind survives the wire format and
 * JSON, every DLQ code is produced by the input that should produce it (built here, byte by byte
 * where the encoder cannot make it), JSON output is exact, and output records read back with
 * avro-c's own reader using the shipped .avsc text alone.
 */
#include <avro.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "codec.h"

static cx_codec_t *codec;
static cx_buf_t buf = CX_BUF_INIT;
static char detail[256];

static void setup(void) {
    char err[256];
    codec = cx_codec_new(err, sizeof err);
    cr_assert(codec, "cx_codec_new: %s", err);
    buf.len = 0;
    detail[0] = 0;
}
static void teardown(void) {
    cx_codec_destroy(codec);
    cx_buf_free(&buf);
}
TestSuite(codec, .init = setup, .fini = teardown);

/* ---- fixtures ---- */

static cx_event_t play(void) {
    cx_event_t e = {0};
    e.type = CX_EV_PLAY;
    strcpy(e.event_id, "ev-1");
    strcpy(e.customer_id, "cust-42");
    e.ts_ms = INT64_C(1700000000123);
    strcpy(e.u.play.title_id, "tt0111161");
    e.u.play.has_genre = true;
    strcpy(e.u.play.genre, "drama");
    e.u.play.seconds_watched = 5400;
    e.has_campaign_code = true;
    strcpy(e.campaign_code, "SPRING24");
    return e;
}
static cx_event_t purchase(void) {
    cx_event_t e = {0};
    e.type = CX_EV_PURCHASE;
    strcpy(e.event_id, "ev-2");
    strcpy(e.customer_id, "c@x.io");
    e.ts_ms = INT64_C(1700000001000);
    e.u.purchase.kind = CX_PK_PACKAGE_EXTENSION;
    e.u.purchase.amount_minor = 1999;
    strcpy(e.u.purchase.currency, "EUR");
    return e;
}
static cx_event_t email_send(void) {
    cx_event_t e = {0};
    e.type = CX_EV_EMAIL_SEND;
    strcpy(e.event_id, "ev-3");
    strcpy(e.customer_id, "cust-42");
    e.ts_ms = INT64_C(1700000002000);
    strcpy(e.u.email_send.campaign_id, "winback-7");
    e.u.email_send.group = CX_GROUP_CONTROL;
    e.u.email_send.channel = CX_CH_PUSH;
    return e;
}
static const char comment_text[] = "buffering \"again\"\n\xc3\xa9";
static cx_event_t survey(void) {
    cx_event_t e = {0};
    e.type = CX_EV_SURVEY;
    strcpy(e.event_id, "ev-4");
    strcpy(e.customer_id, "cust-42");
    e.ts_ms = INT64_C(1700000003000);
    strcpy(e.u.survey.survey_id, "nps-q4");
    e.u.survey.score = 10;
    strcpy(e.u.survey.touchpoint, "playback");
    e.u.survey.has_comment = true;
    e.u.survey.comment = comment_text;
    e.u.survey.comment_len = sizeof comment_text - 1;
    return e;
}

static void assert_event_eq(const cx_event_t *a, const cx_event_t *b) {
    cr_assert_eq(a->type, b->type);
    cr_assert_str_eq(a->event_id, b->event_id);
    cr_assert_str_eq(a->customer_id, b->customer_id);
    cr_assert_eq(a->ts_ms, b->ts_ms);
    cr_assert_eq(a->has_campaign_code, b->has_campaign_code);
    if (a->has_campaign_code) cr_assert_str_eq(a->campaign_code, b->campaign_code);
    switch (a->type) {
    case CX_EV_PLAY:
        cr_assert_str_eq(a->u.play.title_id, b->u.play.title_id);
        cr_assert_eq(a->u.play.has_genre, b->u.play.has_genre);
        if (a->u.play.has_genre) cr_assert_str_eq(a->u.play.genre, b->u.play.genre);
        cr_assert_eq(a->u.play.seconds_watched, b->u.play.seconds_watched);
        cr_assert_eq(a->u.play.has_device, b->u.play.has_device);
        break;
    case CX_EV_PURCHASE:
        cr_assert_eq(a->u.purchase.has_title_id, b->u.purchase.has_title_id);
        cr_assert_eq(a->u.purchase.kind, b->u.purchase.kind);
        cr_assert_eq(a->u.purchase.amount_minor, b->u.purchase.amount_minor);
        cr_assert_str_eq(a->u.purchase.currency, b->u.purchase.currency);
        break;
    case CX_EV_EMAIL_SEND:
        cr_assert_str_eq(a->u.email_send.campaign_id, b->u.email_send.campaign_id);
        cr_assert_eq(a->u.email_send.group, b->u.email_send.group);
        cr_assert_eq(a->u.email_send.channel, b->u.email_send.channel);
        break;
    case CX_EV_SURVEY:
        cr_assert_str_eq(a->u.survey.survey_id, b->u.survey.survey_id);
        cr_assert_eq(a->u.survey.score, b->u.survey.score);
        cr_assert_str_eq(a->u.survey.touchpoint, b->u.survey.touchpoint);
        cr_assert_eq(a->u.survey.has_comment, b->u.survey.has_comment);
        cr_assert_eq(a->u.survey.comment_len, b->u.survey.comment_len);
        if (a->u.survey.has_comment)
            cr_assert(memcmp(a->u.survey.comment, b->u.survey.comment, a->u.survey.comment_len) == 0);
        break;
    default: cr_assert_fail("not an event");
    }
}

static void roundtrip_event(cx_event_t in) {
    cx_record_kind_t kind = cx_codec_kind_of_event(in.type);
    cx_event_t out;
    cr_assert_eq(cx_codec_encode(codec, kind, &in, CX_FMT_WIRE, &buf), CX_OK);
    cr_assert_eq(buf.data[0], 0);
    cr_assert_eq(buf.data[4], (uint8_t)kind);
    cr_assert_eq(cx_codec_decode_event(codec, kind, buf.data, buf.len, &out, detail, sizeof detail), CX_DLQ_NONE, "%s",
                 detail);
    assert_event_eq(&in, &out);

    buf.len = 0;
    cr_assert_eq(cx_codec_encode(codec, kind, &in, CX_FMT_JSON, &buf), CX_OK);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "{\"event_type\":\"%s\",", cx_event_type_name(in.type));
    cr_assert(strncmp((char *)buf.data, prefix, strlen(prefix)) == 0, "%s", (char *)buf.data);
    bool is_campaign = true;
    cr_assert_eq(
        cx_codec_decode_json(codec, (char *)buf.data, buf.len, &out, NULL, &is_campaign, detail, sizeof detail),
        CX_DLQ_NONE, "%s: %s", detail, (char *)buf.data);
    cr_assert_not(is_campaign);
    assert_event_eq(&in, &out);
}

Test(codec, play_round_trips_wire_and_json) {
    roundtrip_event(play());
}
Test(codec, purchase_round_trips_wire_and_json) {
    roundtrip_event(purchase());
}
Test(codec, email_send_round_trips_wire_and_json) {
    roundtrip_event(email_send());
}
Test(codec, survey_round_trips_wire_and_json) {
    roundtrip_event(survey());
}

Test(codec, survey_without_comment_round_trips) {
    cx_event_t e = survey();
    e.u.survey.has_comment = false;
    e.u.survey.comment = NULL;
    e.u.survey.comment_len = 0;
    roundtrip_event(e);
}

static cx_campaign_t campaign(void) {
    static char t1[] = "tt1", t2[] = "tt2";
    static char *titles[] = {t1, t2};
    static char name[] = "Win back Q4";
    cx_campaign_t c = {0};
    strcpy(c.campaign_id, "winback-7");
    c.name = name;
    c.type = CX_CT_WIN_BACK;
    c.start_ts_ms = INT64_C(1700000000000);
    c.end_ts_ms = INT64_C(1702000000000);
    c.observation_days = 14;
    c.promoted_title_ids = titles;
    c.n_promoted = 2;
    c.has_campaign_code = true;
    strcpy(c.campaign_code, "WB7");
    return c;
}

static void assert_campaign_eq(const cx_campaign_t *a, const cx_campaign_t *b) {
    cr_assert_str_eq(a->campaign_id, b->campaign_id);
    cr_assert_str_eq(a->name, b->name);
    cr_assert_eq(a->type, b->type);
    cr_assert_eq(a->start_ts_ms, b->start_ts_ms);
    cr_assert_eq(a->end_ts_ms, b->end_ts_ms);
    cr_assert_eq(a->observation_days, b->observation_days);
    cr_assert_eq(a->n_promoted, b->n_promoted);
    for (size_t i = 0; i < a->n_promoted; i++)
        cr_assert_str_eq(a->promoted_title_ids[i], b->promoted_title_ids[i]);
    cr_assert_eq(a->has_campaign_code, b->has_campaign_code);
    cr_assert_str_eq(a->campaign_code, b->campaign_code);
}

Test(codec, campaign_round_trips_wire_and_json) {
    cx_campaign_t in = campaign(), out = {0};
    cr_assert_eq(cx_codec_encode(codec, CX_REC_CAMPAIGN, &in, CX_FMT_WIRE, &buf), CX_OK);
    cr_assert_eq(cx_codec_decode_campaign(codec, buf.data, buf.len, &out, detail, sizeof detail), CX_DLQ_NONE, "%s",
                 detail);
    assert_campaign_eq(&in, &out);
    buf.len = 0;
    cr_assert_eq(cx_codec_encode(codec, CX_REC_CAMPAIGN, &in, CX_FMT_JSON, &buf), CX_OK);
    cr_assert(strncmp((char *)buf.data, "{\"event_type\":\"campaign\",", 25) == 0);
    bool is_campaign = false;
    cx_event_t ev;
    /* out still owns the first decode's arrays: the decoder clears it first. */
    cr_assert_eq(cx_codec_decode_json(codec, (char *)buf.data, buf.len, &ev, &out, &is_campaign, detail, sizeof detail),
                 CX_DLQ_NONE, "%s", detail);
    cr_assert(is_campaign);
    assert_campaign_eq(&in, &out);
    cx_campaign_clear(&out);
}

/* ---- output records: read back by avro-c's own reader with the shipped schema text ---- */

static avro_schema_t rd_schema;
static avro_value_iface_t *rd_iface;
static avro_value_t rd_value;

/* Decodes buf (wire format) with avro_value_read and the .avsc text alone; consumes every byte. */
static void read_back(cx_record_kind_t kind) {
    const char *text = cx_codec_schema_text(codec, kind);
    cr_assert(text);
    cr_assert_eq(avro_schema_from_json_length(text, strlen(text), &rd_schema), 0);
    rd_iface = avro_generic_class_from_schema(rd_schema);
    cr_assert_eq(avro_generic_value_new(rd_iface, &rd_value), 0);
    cr_assert_eq(buf.data[0], 0);
    uint32_t id = (uint32_t)buf.data[1] << 24 | (uint32_t)buf.data[2] << 16 | (uint32_t)buf.data[3] << 8 | buf.data[4];
    cr_assert_eq(id, (uint32_t)kind);
    avro_reader_t r = avro_reader_memory((const char *)buf.data + 5, (int64_t)(buf.len - 5));
    cr_assert_eq(avro_value_read(r, &rd_value), 0, "%s", avro_strerror());
    avro_reader_free(r);
    size_t size = 0; /* avro_reader_is_eof is for file readers only: compare sizes instead */
    cr_assert_eq(avro_value_sizeof(&rd_value, &size), 0);
    cr_assert_eq(size, buf.len - 5, "bytes left after the record");
}
static void read_back_done(void) {
    avro_value_decref(&rd_value);
    avro_value_iface_decref(rd_iface);
    avro_schema_decref(rd_schema);
}
static avro_value_t fld(const char *name) {
    avro_value_t v;
    cr_assert_eq(avro_value_get_by_name(&rd_value, name, &v, NULL), 0, "no field %s", name);
    if (avro_value_get_type(&v) == AVRO_UNION) {
        avro_value_t b;
        avro_value_get_current_branch(&v, &b);
        return b;
    }
    return v;
}
static int64_t fld_long(const char *name) {
    avro_value_t v = fld(name);
    int64_t l = 0;
    int32_t i = 0;
    if (avro_value_get_type(&v) == AVRO_INT32) return avro_value_get_int(&v, &i), i;
    cr_assert_eq(avro_value_get_long(&v, &l), 0, "%s not a long", name);
    return l;
}
static const char *fld_str(const char *name) {
    avro_value_t v = fld(name);
    const char *s = NULL;
    size_t n;
    cr_assert_eq(avro_value_get_string(&v, &s, &n), 0, "%s not a string", name);
    return s;
}
static bool fld_null(const char *name) {
    avro_value_t v = fld(name);
    return avro_value_get_type(&v) == AVRO_NULL;
}
static const char *fld_enum(const char *name) {
    avro_value_t v = fld(name);
    int i = -1;
    cr_assert_eq(avro_value_get_enum(&v, &i), 0);
    return avro_schema_enum_get(avro_value_get_schema(&v), i);
}
static double fld_double(const char *name) {
    avro_value_t v = fld(name);
    double d = 0;
    cr_assert_eq(avro_value_get_double(&v, &d), 0);
    return d;
}

static json_t *json_of(cx_record_kind_t kind, const void *rec) {
    buf.len = 0;
    cr_assert_eq(cx_codec_encode(codec, kind, rec, CX_FMT_JSON, &buf), CX_OK);
    json_error_t e;
    json_t *j = json_loadb((char *)buf.data, buf.len, 0, &e);
    cr_assert(j, "bad JSON %s: %s", e.text, (char *)buf.data);
    return j;
}

static cx_segment_change_t segment_change(void) {
    cx_segment_change_t s = {0};
    strcpy(s.customer_id, "cust-42");
    s.ts_ms = INT64_C(1700000000000);
    s.previous_segment = NULL;
    s.segment = "Champions";
    s.r_score = 5, s.f_score = 4, s.m_score = 4;
    s.recency_days = 3;
    s.frequency = 41;
    s.monetary_minor = 25000;
    strcpy(s.cause, "ev-1");
    s.has_p_alive = true;
    s.p_alive = 0.1;
    return s;
}

Test(codec, segment_change_json_is_exact) {
    cx_segment_change_t s = segment_change();
    cr_assert_eq(cx_codec_encode(codec, CX_REC_SEGMENT_CHANGE, &s, CX_FMT_JSON, &buf), CX_OK);
    cr_assert_str_eq((char *)buf.data,
                     "{\"customer_id\":\"cust-42\",\"ts\":1700000000000,\"previous_segment\":null,"
                     "\"segment\":\"Champions\",\"r_score\":5,\"f_score\":4,\"m_score\":4,\"recency_days\":3,"
                     "\"frequency\":41,\"monetary_minor\":25000,\"cause\":\"ev-1\",\"p_alive\":0.1,"
                     "\"clv_minor\":null}");
}

Test(codec, segment_change_wire_reads_back_with_avsc_alone) {
    cx_segment_change_t s = segment_change();
    s.previous_segment = "Loyal";
    s.has_clv_minor = true;
    s.clv_minor = -7;
    cr_assert_eq(cx_codec_encode(codec, CX_REC_SEGMENT_CHANGE, &s, CX_FMT_WIRE, &buf), CX_OK);
    read_back(CX_REC_SEGMENT_CHANGE);
    cr_assert_str_eq(fld_str("customer_id"), "cust-42");
    cr_assert_eq(fld_long("ts"), s.ts_ms);
    cr_assert_str_eq(fld_str("previous_segment"), "Loyal");
    cr_assert_str_eq(fld_str("segment"), "Champions");
    cr_assert_eq(fld_long("r_score"), 5);
    cr_assert_eq(fld_long("m_score"), 4);
    cr_assert_eq(fld_long("frequency"), 41);
    cr_assert_eq(fld_long("monetary_minor"), 25000);
    cr_assert_str_eq(fld_str("cause"), "ev-1");
    cr_assert_eq(fld_double("p_alive"), 0.1);
    cr_assert_eq(fld_long("clv_minor"), -7);
    read_back_done();
}

Test(codec, doubles_are_written_in_shortest_round_trip_form) {
    cx_kpi_t k = {0};
    strcpy(k.campaign_id, "c1");
    k.response_rate_test = 0.1;
    k.response_rate_control = 1e-7;
    k.has_lift = true;
    k.lift = 2.0;
    json_t *j = json_of(CX_REC_KPI, &k);
    json_decref(j);
    const char *s = (char *)buf.data;
    cr_assert(strstr(s, "\"response_rate_test\":0.1,"), "%s", s);
    cr_assert(strstr(s, "\"response_rate_control\":1e-07,"), "%s", s);
    cr_assert(strstr(s, "\"lift\":2.0,"), "%s", s);
    cr_assert(strstr(s, "\"lift_p_value\":null,"), "%s", s);
    cr_assert(strstr(s, "\"closed\":false}"), "%s", s);
}

Test(codec, kpi_wire_reads_back_with_avsc_alone) {
    cx_kpi_t k = {0};
    strcpy(k.campaign_id, "c1");
    k.ts_ms = 5;
    k.as_of_ts_ms = 4;
    k.sent_test = 900, k.sent_control = 100, k.responders_test_any = 90, k.responders_test_hard = 30;
    k.responders_control_any = 5, k.responders_control_hard = 1, k.retrievals = 70, k.purchases = 20;
    k.turnover_minor = 40000, k.revenue_per_responder_minor = 444;
    k.response_rate_test = 0.1, k.response_rate_control = 0.05;
    k.has_lift = true, k.lift = 1.0;
    k.closed = true;
    cr_assert_eq(cx_codec_encode(codec, CX_REC_KPI, &k, CX_FMT_WIRE, &buf), CX_OK);
    read_back(CX_REC_KPI);
    cr_assert_str_eq(fld_str("campaign_id"), "c1");
    cr_assert_eq(fld_long("as_of_ts"), 4);
    cr_assert_eq(fld_long("sent_test"), 900);
    cr_assert_eq(fld_long("responders_control_hard"), 1);
    cr_assert_eq(fld_long("revenue_per_responder_minor"), 444);
    cr_assert_eq(fld_double("response_rate_control"), 0.05);
    cr_assert_eq(fld_double("lift"), 1.0);
    cr_assert(fld_null("lift_p_value"));
    avro_value_t c = fld("closed");
    int b = 0;
    avro_value_get_boolean(&c, &b);
    cr_assert(b);
    read_back_done();
}

Test(codec, trigger_round_trips_through_wire_and_json) {
    cx_trigger_t t = {0};
    strcpy(t.customer_id, "cust-42");
    t.ts_ms = 86400000;
    strcpy(t.trigger_id, "cust-42:STOPPED_STREAMING:86400000");
    t.kind = CX_TRIG_CHURN_RISK;
    t.has_days_since_last_play = true, t.days_since_last_play = 21;
    t.has_usual_gap_days = true, t.usual_gap_days = 2.5;
    t.segment = "At Risk";
    t.suggested_action = CX_ACT_WIN_BACK_OFFER;
    t.has_top_genre = true;
    strcpy(t.top_genre, "comedy");
    t.eligible = true;
    cr_assert_eq(cx_codec_encode(codec, CX_REC_TRIGGER, &t, CX_FMT_WIRE, &buf), CX_OK);
    read_back(CX_REC_TRIGGER);
    cr_assert_str_eq(fld_str("trigger_id"), t.trigger_id);
    cr_assert_str_eq(fld_enum("kind"), "CHURN_RISK");
    cr_assert_eq(fld_long("days_since_last_play"), 21);
    cr_assert_eq(fld_double("usual_gap_days"), 2.5);
    cr_assert(fld_null("p_alive"));
    cr_assert_str_eq(fld_str("segment"), "At Risk");
    cr_assert_str_eq(fld_enum("suggested_action"), "WIN_BACK_OFFER");
    cr_assert_str_eq(fld_str("top_genre"), "comedy");
    cr_assert(fld_null("last_contact_campaign_id"));
    read_back_done();
    json_t *j = json_of(CX_REC_TRIGGER, &t);
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "CHURN_RISK");
    cr_assert(json_object_get(j, "eligible") == json_true());
    cr_assert(json_is_null(json_object_get(j, "p_alive")));
    json_decref(j);
}

Test(codec, response_round_trips_through_wire_and_json) {
    cx_response_t r = {0};
    strcpy(r.customer_id, "cust-42");
    r.ts_ms = 10;
    strcpy(r.response_id, "ev-9");
    strcpy(r.campaign_id, "winback-7");
    strcpy(r.send_event_id, "ev-3");
    strcpy(r.response_event_id, "ev-9");
    r.response_type = CX_RESP_SOFT;
    r.action = CX_RESP_ACTION_PURCHASE;
    r.amount_minor = 499;
    r.group = CX_GROUP_TEST;
    r.latency_ms = INT64_C(3600000000);
    cr_assert_eq(cx_codec_encode(codec, CX_REC_RESPONSE, &r, CX_FMT_WIRE, &buf), CX_OK);
    read_back(CX_REC_RESPONSE);
    cr_assert_str_eq(fld_str("send_event_id"), "ev-3");
    cr_assert_str_eq(fld_enum("response_type"), "SOFT");
    cr_assert_str_eq(fld_enum("action"), "PURCHASE");
    cr_assert_str_eq(fld_enum("group"), "TEST");
    cr_assert_eq(fld_long("latency_ms"), INT64_C(3600000000));
    read_back_done();
    json_t *j = json_of(CX_REC_RESPONSE, &r);
    cr_assert_eq(json_integer_value(json_object_get(j, "latency_ms")), INT64_C(3600000000));
    json_decref(j);
}

Test(codec, enriched_carries_the_event_and_its_context) {
    cx_event_t ev = survey();
    cx_enriched_t en = {0};
    en.event = &ev;
    en.has_segment = true;
    en.segment = "Loyal";
    en.r_score = 3, en.f_score = 4, en.m_score = 2;
    en.has_nps_last = true, en.nps_last = 10;
    en.newsletter_recipient = true;
    en.has_response_campaign_id = true;
    strcpy(en.response_campaign_id, "winback-7");
    cr_assert_eq(cx_codec_encode(codec, CX_REC_ENRICHED, &en, CX_FMT_WIRE, &buf), CX_OK);
    read_back(CX_REC_ENRICHED);
    cr_assert_str_eq(fld_enum("event_type"), "survey");
    cr_assert_str_eq(fld_str("event_id"), "ev-4");
    cr_assert_eq(fld_long("score"), 10);
    cr_assert_str_eq(fld_str("comment"), comment_text);
    cr_assert(fld_null("title_id"));
    cr_assert(fld_null("kind"));
    cr_assert(fld_null("channel"));
    cr_assert_str_eq(fld_str("segment"), "Loyal");
    cr_assert_eq(fld_long("m_score"), 2);
    cr_assert(fld_null("p_alive"));
    cr_assert_str_eq(fld_str("response_campaign_id"), "winback-7");
    read_back_done();

    /* The same encoder reused for another type: the survey fields go back to null. */
    cx_event_t p = purchase();
    en.event = &p;
    en.has_segment = false;
    json_t *j = json_of(CX_REC_ENRICHED, &en);
    cr_assert_str_eq(json_string_value(json_object_get(j, "event_type")), "purchase");
    cr_assert_str_eq(json_string_value(json_object_get(j, "kind")), "PACKAGE_EXTENSION");
    cr_assert_eq(json_integer_value(json_object_get(j, "amount_minor")), 1999);
    cr_assert(json_is_null(json_object_get(j, "score")));
    cr_assert(json_is_null(json_object_get(j, "comment")));
    cr_assert(json_is_null(json_object_get(j, "segment")));
    cr_assert(json_is_null(json_object_get(j, "r_score")));
    json_decref(j);
}

Test(codec, profile_has_nulls_without_transactions_and_lists_contacts) {
    static cx_profile_out_t pr; /* large: not on the stack */
    memset(&pr, 0, sizeof pr);
    strcpy(pr.customer_id, "cust-42");
    pr.has_last_play_ts = true;
    pr.last_play_ts = 77;
    pr.plays_total = 3;
    pr.expected_transactions_90d = 0.25;
    pr.n_contacts = 2;
    strcpy(pr.contacts[0].campaign_id, "nl-1");
    pr.contacts[0].campaign_type = CX_CT_NEWSLETTER;
    pr.contacts[0].ts_ms = 5;
    strcpy(pr.contacts[1].campaign_id, "wb-1");
    pr.contacts[1].campaign_type = CX_CT_WIN_BACK;
    pr.contacts[1].channel = CX_CH_SMS;
    pr.contacts[1].ts_ms = 6;
    cr_assert_eq(cx_codec_encode(codec, CX_REC_PROFILE, &pr, CX_FMT_WIRE, &buf), CX_OK);
    read_back(CX_REC_PROFILE);
    cr_assert(fld_null("first_transaction_ts"));
    cr_assert(fld_null("segment"));
    cr_assert(fld_null("r_score"));
    cr_assert(fld_null("p_alive"));
    cr_assert_eq(fld_long("last_play_ts"), 77);
    cr_assert_eq(fld_long("plays_total"), 3);
    cr_assert_eq(fld_double("expected_transactions_90d"), 0.25);
    avro_value_t contacts = fld("contacts"), c1, f;
    size_t n = 0;
    avro_value_get_size(&contacts, &n);
    cr_assert_eq(n, 2);
    avro_value_get_by_index(&contacts, 1, &c1, NULL);
    avro_value_get_by_name(&c1, "channel", &f, NULL);
    int e = -1;
    avro_value_get_enum(&f, &e);
    cr_assert_eq(e, CX_CH_SMS);
    read_back_done();

    pr.has_tx = true;
    pr.segment = "New";
    pr.r_score = 5;
    json_t *j = json_of(CX_REC_PROFILE, &pr);
    cr_assert_str_eq(json_string_value(json_object_get(j, "segment")), "New");
    cr_assert_eq(json_integer_value(json_object_get(j, "r_score")), 5);
    json_t *cs = json_object_get(j, "contacts");
    cr_assert_eq(json_array_size(cs), 2);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(cs, 1), "campaign_type")), "WIN_BACK");
    json_decref(j);
}

/* ---- DLQ codes, one input each ---- */

static cx_dlq_code_t decode_buf(cx_record_kind_t kind) {
    cx_event_t out;
    return cx_codec_decode_event(codec, kind, buf.data, buf.len, &out, detail, sizeof detail);
}
static void encode(const cx_event_t *e) {
    buf.len = 0;
    cr_assert_eq(cx_codec_encode(codec, cx_codec_kind_of_event(e->type), e, CX_FMT_WIRE, &buf), CX_OK);
}
static cx_dlq_code_t decode_line(const char *line) {
    cx_event_t ev;
    cx_campaign_t camp = {0};
    bool is_campaign;
    cx_dlq_code_t code =
        cx_codec_decode_json(codec, line, strlen(line), &ev, &camp, &is_campaign, detail, sizeof detail);
    cx_campaign_clear(&camp);
    return code;
}

Test(codec, empty_buffer_is_bad_framing) {
    cx_event_t out;
    cr_assert_eq(cx_codec_decode_event(codec, CX_REC_PLAY, "", 0, &out, detail, sizeof detail), CX_DLQ_BAD_FRAMING);
}

Test(codec, magic_byte_1_is_bad_framing) {
    cx_event_t e = play();
    encode(&e);
    buf.data[0] = 1;
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_BAD_FRAMING);
    cr_assert(strstr(detail, "0x01"), "%s", detail);
}

Test(codec, unknown_schema_id_99_is_unknown_schema) {
    cx_event_t e = play();
    encode(&e);
    buf.data[4] = 99;
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_UNKNOWN_SCHEMA);
    cr_assert(strstr(detail, "99"), "%s", detail);
}

Test(codec, id_of_another_topic_is_unknown_schema) {
    cx_event_t e = purchase();
    encode(&e);
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_UNKNOWN_SCHEMA);
    cr_assert(strstr(detail, "PurchaseEvent"), "%s", detail);
}

Test(codec, registry_id_override_is_written_and_required) {
    cx_event_t e = play();
    encode(&e);
    cx_codec_set_schema_id(codec, CX_REC_PLAY, 1234);
    cr_assert_eq(cx_codec_schema_id(codec, CX_REC_PLAY), 1234);
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_UNKNOWN_SCHEMA); /* old id 1 */
    encode(&e);
    cr_assert_eq(buf.data[3], 1234 >> 8);
    cr_assert_eq(buf.data[4], 1234 & 0xFF);
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_NONE, "%s", detail);
}

Test(codec, every_truncation_is_decode_error) {
    cx_event_t e = survey();
    encode(&e);
    size_t full = buf.len;
    for (size_t len = 5; len < full; len++) {
        buf.len = len;
        cr_assert_eq(decode_buf(CX_REC_SURVEY), CX_DLQ_DECODE_ERROR, "length %zu", len);
    }
}

Test(codec, trailing_bytes_are_decode_error) {
    cx_event_t e = play();
    encode(&e);
    cx_buf_putc(&buf, 0);
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_DECODE_ERROR);
    cr_assert(strstr(detail, "trailing"), "%s", detail);
}

Test(codec, huge_string_length_is_decode_error_without_allocating_it) {
    /* header, then event_id claiming 2^40 bytes */
    uint8_t bad[] = {0, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 'x'};
    cx_event_t out;
    cr_assert_eq(cx_codec_decode_event(codec, CX_REC_PLAY, bad, sizeof bad, &out, detail, sizeof detail),
                 CX_DLQ_DECODE_ERROR);
}

/* A long of 10 bytes at most, the 10th holding bit 63 alone: a redundant long form is read as its
 * value, a 10th byte with more bits or an 11th byte is refused, with the rest of the record after it
 * and cut short at the end of the buffer. */
Test(codec, long_forms_of_ten_bytes_and_more) {
    cx_event_t e = play();
    encode(&e);
    cr_assert_eq(buf.data[5], 8, "event_id's length (4, zigzag 8) follows the 5-byte header");
    cx_buf_t orig = CX_BUF_INIT;
    cx_buf_append(&orig, buf.data, buf.len);
    static const uint8_t redundant[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t bit64[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02};
    static const uint8_t eleven[] = {0x88, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    struct {
        const uint8_t *b;
        size_t n;
        cx_dlq_code_t want;
    } forms[] = {{redundant, sizeof redundant, CX_DLQ_NONE},
                 {bit64, sizeof bit64, CX_DLQ_DECODE_ERROR},
                 {eleven, sizeof eleven, CX_DLQ_DECODE_ERROR}};
    for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
        buf.len = 0;
        cx_buf_append(&buf, orig.data, 5);
        cx_buf_append(&buf, forms[k].b, forms[k].n);
        cx_buf_append(&buf, orig.data + 6, orig.len - 6);
        cx_event_t out;
        cx_dlq_code_t got = cx_codec_decode_event(codec, CX_REC_PLAY, buf.data, buf.len, &out, detail, sizeof detail);
        cr_assert_eq(got, forms[k].want, "form %zu: %s", k, detail);
        if (got == CX_DLQ_NONE) cr_assert_str_eq(out.event_id, "ev-1");
    }
    /* at the end of the buffer: a bare long (the header, then the length alone) */
    for (size_t k = 1; k < sizeof forms / sizeof forms[0]; k++) {
        buf.len = 0;
        cx_buf_append(&buf, orig.data, 5);
        cx_buf_append(&buf, forms[k].b, forms[k].n - 1);
        cx_event_t out;
        cr_assert_eq(cx_codec_decode_event(codec, CX_REC_PLAY, buf.data, buf.len, &out, detail, sizeof detail),
                     CX_DLQ_DECODE_ERROR, "short form %zu", k);
    }
    cx_buf_free(&orig);
}

Test(codec, bad_union_index_is_decode_error) {
    cx_event_t e = play();
    e.has_campaign_code = false;
    encode(&e);
    buf.data[buf.len - 1] = 4; /* campaign_code union index 2: zigzag 4 */
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_DECODE_ERROR);
}

Test(codec, absent_required_field_in_json_is_missing_field) {
    cr_assert_eq(decode_line("{\"event_type\":\"play\",\"event_id\":\"e\",\"ts\":1,\"title_id\":\"t\","
                             "\"seconds_watched\":1}"),
                 CX_DLQ_MISSING_FIELD);
    cr_assert(strstr(detail, "customer_id"), "%s", detail);
}

Test(codec, null_required_field_in_json_is_missing_field) {
    cr_assert_eq(decode_line("{\"event_type\":\"play\",\"event_id\":\"e\",\"customer_id\":null,\"ts\":1,"
                             "\"title_id\":\"t\",\"seconds_watched\":1}"),
                 CX_DLQ_MISSING_FIELD);
}

Test(codec, json_applies_schema_defaults_for_absent_fields) {
    cx_event_t ev;
    bool is_campaign;
    const char *line = "{\"event_type\":\"email_send\",\"event_id\":\"e\",\"customer_id\":\"c\",\"ts\":1,"
                       "\"campaign_id\":\"k\",\"group\":\"TEST\"}";
    cr_assert_eq(cx_codec_decode_json(codec, line, strlen(line), &ev, NULL, &is_campaign, detail, sizeof detail),
                 CX_DLQ_NONE, "%s", detail);
    cr_assert_eq(ev.u.email_send.channel, CX_CH_EMAIL);
    cr_assert_not(ev.has_campaign_code);
}

Test(codec, json_that_is_not_json_or_has_unknown_type_is_decode_error) {
    cr_assert_eq(decode_line("{\"event_type\":"), CX_DLQ_DECODE_ERROR);
    cr_assert_eq(decode_line("[1,2]"), CX_DLQ_DECODE_ERROR);
    cr_assert_eq(decode_line("{\"event_type\":\"click\"}"), CX_DLQ_DECODE_ERROR);
    cr_assert_eq(decode_line("{\"event_type\":\"play\",\"event_id\":\"e\",\"customer_id\":\"c\",\"ts\":\"soon\","
                             "\"title_id\":\"t\",\"seconds_watched\":1}"),
                 CX_DLQ_DECODE_ERROR);
}

Test(codec, unknown_enum_symbol_is_out_of_range) {
    cr_assert_eq(decode_line("{\"event_type\":\"email_send\",\"event_id\":\"e\",\"customer_id\":\"c\",\"ts\":1,"
                             "\"campaign_id\":\"k\",\"group\":\"BOTH\"}"),
                 CX_DLQ_OUT_OF_RANGE);
}

Test(codec, customer_id_with_a_space_is_bad_id) {
    cx_event_t e = play();
    strcpy(e.customer_id, "a b");
    encode(&e);
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_BAD_ID);
    cr_assert(strstr(detail, "customer_id"), "%s", detail);
}

Test(codec, empty_customer_id_is_bad_id_not_missing) {
    cx_event_t e = play();
    e.customer_id[0] = 0;
    encode(&e);
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_BAD_ID);
}

Test(codec, customer_id_of_129_bytes_is_bad_id_on_both_paths) {
    char id[130];
    memset(id, 'a', 129);
    id[129] = 0;
    char line[512];
    snprintf(line, sizeof line,
             "{\"event_type\":\"play\",\"event_id\":\"e\",\"customer_id\":\"%s\",\"ts\":1,\"title_id\":\"t\","
             "\"seconds_watched\":1}",
             id);
    cr_assert_eq(decode_line(line), CX_DLQ_BAD_ID);
    /* Wire: a hand-built PlayEvent (the struct cannot hold the id). */
    buf.len = 0;
    uint8_t head[] = {0, 0, 0, 0, 1, 2, 'e', 0x82, 0x02}; /* event_id "e", customer_id length 129 */
    cx_buf_append(&buf, head, sizeof head);
    cx_buf_append(&buf, id, 129);
    uint8_t tail[] = {2, 2, 't', 0, 2, 0, 0}; /* ts 1, title "t", genre null, seconds 1, device, code */
    cx_buf_append(&buf, tail, sizeof tail);
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_BAD_ID, "%s", detail);
    buf.data[7] = 0x80; /* length 128 exactly: accepted after trimming one byte */
    memmove(buf.data + 9 + 128, buf.data + 9 + 129, sizeof tail);
    buf.len--;
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_NONE, "%s", detail);
}

Test(codec, score_11_is_out_of_range) {
    cx_event_t e = survey();
    e.u.survey.score = 11;
    encode(&e);
    cr_assert_eq(decode_buf(CX_REC_SURVEY), CX_DLQ_OUT_OF_RANGE);
    cr_assert_str_eq(detail, "score 11 outside 0..10");
}

Test(codec, score_minus_1_is_out_of_range) {
    cx_event_t e = survey();
    e.u.survey.score = -1;
    encode(&e);
    cr_assert_eq(decode_buf(CX_REC_SURVEY), CX_DLQ_OUT_OF_RANGE);
}

Test(codec, negative_amount_is_out_of_range) {
    cx_event_t e = purchase();
    e.u.purchase.amount_minor = -5;
    encode(&e);
    cr_assert_eq(decode_buf(CX_REC_PURCHASE), CX_DLQ_OUT_OF_RANGE);
    cr_assert(strstr(detail, "amount_minor"), "%s", detail);
}

Test(codec, negative_seconds_watched_is_out_of_range) {
    cx_event_t e = play();
    e.u.play.seconds_watched = -1;
    encode(&e);
    cr_assert_eq(decode_buf(CX_REC_PLAY), CX_DLQ_OUT_OF_RANGE);
}

Test(codec, lower_case_currency_is_out_of_range) {
    cx_event_t e = purchase();
    strcpy(e.u.purchase.currency, "usd");
    encode(&e);
    cr_assert_eq(decode_buf(CX_REC_PURCHASE), CX_DLQ_OUT_OF_RANGE);
    cr_assert(strstr(detail, "usd"), "%s", detail);
}

Test(codec, genre_over_64_bytes_is_out_of_range) {
    char line[512];
    char genre[66];
    memset(genre, 'g', 65);
    genre[65] = 0;
    snprintf(line, sizeof line,
             "{\"event_type\":\"play\",\"event_id\":\"e\",\"customer_id\":\"c\",\"ts\":1,\"title_id\":\"t\","
             "\"genre\":\"%s\",\"seconds_watched\":1}",
             genre);
    cr_assert_eq(decode_line(line), CX_DLQ_OUT_OF_RANGE);
}

Test(codec, campaign_observation_days_outside_range_is_out_of_range) {
    cx_campaign_t c = campaign(), out = {0};
    c.observation_days = 3651;
    cr_assert_eq(cx_codec_encode(codec, CX_REC_CAMPAIGN, &c, CX_FMT_WIRE, &buf), CX_OK);
    cr_assert_eq(cx_codec_decode_campaign(codec, buf.data, buf.len, &out, detail, sizeof detail), CX_DLQ_OUT_OF_RANGE);
    cr_assert_null(out.name); /* nothing owned after a rejection */
}

static const cx_check_opts_t opts = {.min_ts_ms = INT64_C(631152000000), /* 1990-01-01 */
                                     .max_future_ms = CX_DAY_MS,
                                     .now_ms = INT64_C(1700000000000)};

Test(codec, timestamp_below_min_is_bad_timestamp) {
    cx_event_t e = play();
    e.ts_ms = opts.min_ts_ms - 1;
    cr_assert_eq(cx_codec_check_event(&e, &opts, detail, sizeof detail), CX_DLQ_BAD_TIMESTAMP);
    e.ts_ms = opts.min_ts_ms;
    cr_assert_eq(cx_codec_check_event(&e, &opts, detail, sizeof detail), CX_DLQ_NONE);
}

Test(codec, future_timestamp_is_bad_timestamp_only_with_a_clock) {
    cx_event_t e = play();
    e.ts_ms = opts.now_ms + opts.max_future_ms + 1;
    cr_assert_eq(cx_codec_check_event(&e, &opts, detail, sizeof detail), CX_DLQ_BAD_TIMESTAMP);
    cx_check_opts_t replay = opts;
    replay.now_ms = 0;
    cr_assert_eq(cx_codec_check_event(&e, &replay, detail, sizeof detail), CX_DLQ_NONE);
    e.ts_ms = opts.now_ms + opts.max_future_ms;
    cr_assert_eq(cx_codec_check_event(&e, &opts, detail, sizeof detail), CX_DLQ_NONE);
}

Test(codec, currency_not_allowed_is_unknown_currency) {
    static const char *const allowed[] = {"EUR", "GBP"};
    cx_check_opts_t o = opts;
    o.currencies = allowed;
    o.n_currencies = 2;
    cx_event_t e = purchase();
    cr_assert_eq(cx_codec_check_event(&e, &o, detail, sizeof detail), CX_DLQ_NONE);
    strcpy(e.u.purchase.currency, "USD");
    cr_assert_eq(cx_codec_check_event(&e, &o, detail, sizeof detail), CX_DLQ_UNKNOWN_CURRENCY);
    o.n_currencies = 0;
    cr_assert_eq(cx_codec_check_event(&e, &o, detail, sizeof detail), CX_DLQ_NONE);
}

Test(codec, shipped_schema_text_keeps_logical_types) {
    const char *t = cx_codec_schema_text(codec, CX_REC_PLAY);
    cr_assert(strstr(t, "timestamp-millis"));
    cr_assert(strstr(t, "\"io.cxstream\""));
    cr_assert_eq(cx_codec_schema_id(codec, CX_REC_PROFILE), 15);
}

/* ---- direct encoders and reader against avro-c's generic path, on random records ---- */

#include <float.h>
#include <math.h>

#define RANDOM_RECORDS 3000

static uint64_t rng = 0x5eed;
static uint64_t rnd(void) {
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static uint64_t below(uint64_t n) {
    return rnd() % n;
}
static bool coin(void) {
    return rnd() & 1;
}
static int64_t rnd_i64(void) {
    static const int64_t edges[] = {0, -1, 1, 63, 64, -64, -65, INT64_MAX, INT64_MIN, INT32_MAX, INT32_MIN};
    switch (below(4)) {
    case 0: return (int64_t)below(200) - 100;
    case 1: return (int64_t)rnd();
    case 2: return edges[below(sizeof edges / sizeof edges[0])];
    default: return (int64_t)below(UINT64_C(1) << 42);
    }
}
static int32_t rnd_i32(void) {
    static const int32_t edges[] = {0, -1, 1, 63, 64, -64, -65, INT32_MAX, INT32_MIN};
    switch (below(3)) {
    case 0: return (int32_t)below(200) - 100;
    case 1: return (int32_t)(uint32_t)rnd();
    default: return edges[below(sizeof edges / sizeof edges[0])];
    }
}
static double rnd_double(void) {
    static const double edges[] = {0.0, -0.0, 1.0, 0.1, DBL_MIN, DBL_MAX, 1e-300, -2.5};
    switch (below(4)) {
    case 0: return (double)below(1000000) / 1000000.0;
    case 1: {
        uint64_t u = rnd(); /* any bit pattern: NaNs with payloads, infinities, subnormals */
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    case 2: return below(2) ? INFINITY : -INFINITY;
    default: return edges[below(sizeof edges / sizeof edges[0])];
    }
}
/* A string valid for cx_id_valid (and so cx_token_valid), min..max bytes. */
static void rnd_id(char *dst, size_t min, size_t max) {
    static const char set[] = "ABCXYZabcxyz0189._:@-";
    size_t n = min + below(max - min + 1);
    for (size_t i = 0; i < n; i++)
        dst[i] = set[below(sizeof set - 1)];
    dst[n] = 0;
}
/* Any bytes but NUL (control characters, invalid UTF-8), 0..max bytes: the encoders copy them as they are. */
static void rnd_bytes(char *dst, size_t max) {
    size_t n = below(max + 1);
    for (size_t i = 0; i < n; i++)
        dst[i] = (char)(1 + below(255));
    dst[n] = 0;
}

static char comment_buf[400];

/* A random input event; valid (decodable) when `valid`, else anything the struct can hold. */
static cx_event_t rnd_event(cx_event_type_t type, bool valid) {
    cx_event_t e;
    memset(&e, 0, sizeof e);
    e.type = type;
    if (valid) {
        rnd_id(e.event_id, 1, CX_ID_MAX);
        rnd_id(e.customer_id, 1, CX_ID_MAX);
    } else {
        rnd_bytes(e.event_id, CX_ID_MAX);
        rnd_bytes(e.customer_id, CX_ID_MAX);
    }
    e.ts_ms = rnd_i64();
    if (type != CX_EV_SURVEY && (e.has_campaign_code = coin())) {
        if (valid)
            rnd_id(e.campaign_code, 1, CX_ID_MAX);
        else
            rnd_bytes(e.campaign_code, CX_ID_MAX);
    }
    switch (type) {
    case CX_EV_PLAY: {
        cx_play_t *p = &e.u.play;
        valid ? rnd_id(p->title_id, 1, CX_ID_MAX) : rnd_bytes(p->title_id, CX_ID_MAX);
        if ((p->has_genre = coin())) valid ? rnd_id(p->genre, 1, CX_SHORT_MAX) : rnd_bytes(p->genre, CX_SHORT_MAX);
        p->seconds_watched = rnd_i32();
        if (valid && p->seconds_watched < 0) p->seconds_watched = -(p->seconds_watched + 1);
        if ((p->has_device = coin())) valid ? rnd_id(p->device, 1, CX_SHORT_MAX) : rnd_bytes(p->device, CX_SHORT_MAX);
        break;
    }
    case CX_EV_PURCHASE: {
        cx_purchase_t *p = &e.u.purchase;
        if ((p->has_title_id = coin())) valid ? rnd_id(p->title_id, 1, CX_ID_MAX) : rnd_bytes(p->title_id, CX_ID_MAX);
        p->kind = (cx_purchase_kind_t)below(CX_PK__COUNT);
        p->amount_minor = rnd_i64();
        if (valid && p->amount_minor < 0) p->amount_minor = -(p->amount_minor + 1);
        for (int i = 0; i < 3; i++)
            p->currency[i] = (char)('A' + below(26));
        break;
    }
    case CX_EV_EMAIL_SEND: {
        cx_email_send_t *m = &e.u.email_send;
        valid ? rnd_id(m->campaign_id, 1, CX_ID_MAX) : rnd_bytes(m->campaign_id, CX_ID_MAX);
        m->group = (cx_group_t)below(CX_GROUP__COUNT);
        m->channel = (cx_channel_t)below(CX_CH__COUNT);
        break;
    }
    case CX_EV_SURVEY: {
        cx_survey_t *q = &e.u.survey;
        valid ? rnd_id(q->survey_id, 1, CX_ID_MAX) : rnd_bytes(q->survey_id, CX_ID_MAX);
        q->score = valid ? (int32_t)below(11) : rnd_i32();
        valid ? rnd_id(q->touchpoint, 1, CX_SHORT_MAX) : rnd_bytes(q->touchpoint, CX_SHORT_MAX);
        if ((q->has_comment = coin())) {
            q->comment_len = below(sizeof comment_buf); /* any bytes, NUL included */
            for (size_t i = 0; i < q->comment_len; i++)
                comment_buf[i] = (char)below(256);
            q->comment = comment_buf;
        }
        break;
    }
    default: break;
    }
    return e;
}

static cx_buf_t gbuf = CX_BUF_INIT;

/* The direct wire encoding of rec equals avro-c's generic encoding byte for byte. */
static void assert_same_as_generic(cx_record_kind_t kind, const void *rec, int i) {
    buf.len = 0;
    gbuf.len = 0;
    cx_err_t direct = cx_codec_encode(codec, kind, rec, CX_FMT_WIRE, &buf);
    cx_err_t generic = cx_codec_encode_generic(codec, kind, rec, &gbuf);
    cr_assert_eq(direct, generic, "kind %d record %d: direct %d, generic %d", (int)kind, i, (int)direct, (int)generic);
    if (direct != CX_OK) return;
    cr_assert_eq(buf.len, gbuf.len, "kind %d record %d: %zu bytes direct, %zu generic", (int)kind, i, buf.len,
                 gbuf.len);
    size_t at = 0;
    while (at < buf.len && buf.data[at] == gbuf.data[at])
        at++;
    cr_assert_eq(at, buf.len, "kind %d record %d: first difference at byte %zu", (int)kind, i, at);
}

Test(codec, direct_wire_equals_generic_for_random_input_events_and_round_trips) {
    static const cx_event_type_t types[] = {CX_EV_PLAY, CX_EV_PURCHASE, CX_EV_EMAIL_SEND, CX_EV_SURVEY};
    for (int i = 0; i < RANDOM_RECORDS; i++) {
        for (size_t t = 0; t < 4; t++) {
            cx_record_kind_t kind = cx_codec_kind_of_event(types[t]);
            cx_event_t in = rnd_event(types[t], false);
            assert_same_as_generic(kind, &in, i);

            in = rnd_event(types[t], true);
            assert_same_as_generic(kind, &in, i);
            cx_event_t out;
            cr_assert_eq(cx_codec_decode_event(codec, kind, buf.data, buf.len, &out, detail, sizeof detail),
                         CX_DLQ_NONE, "kind %d record %d: %s", (int)kind, i, detail);
            assert_event_eq(&in, &out);
            if (in.type == CX_EV_PLAY && in.u.play.has_device) cr_assert_str_eq(in.u.play.device, out.u.play.device);
            if (in.type == CX_EV_PURCHASE && in.u.purchase.has_title_id)
                cr_assert_str_eq(in.u.purchase.title_id, out.u.purchase.title_id);
            /* The decoded comment is the codec's copy, not the input bytes. */
            if (in.type == CX_EV_SURVEY && in.u.survey.has_comment)
                cr_assert(out.u.survey.comment != (const char *)buf.data + 5 || in.u.survey.comment_len == 0);
        }
    }
}

Test(codec, direct_wire_equals_generic_for_random_campaigns_and_round_trips) {
    char name[300], titles_buf[6][CX_ID_MAX + 1];
    char *titles[6];
    for (int i = 0; i < RANDOM_RECORDS; i++) {
        cx_campaign_t in = {0}, out = {0};
        rnd_id(in.campaign_id, 1, CX_ID_MAX);
        rnd_bytes(name, sizeof name - 1);
        in.name = name;
        in.type = (cx_campaign_type_t)below(CX_CT__COUNT);
        in.start_ts_ms = rnd_i64() / 2;
        in.end_ts_ms = in.start_ts_ms + (int64_t)below(UINT64_C(1) << 40);
        in.observation_days = (int32_t)below(3651);
        in.n_promoted = below(7);
        for (size_t t = 0; t < in.n_promoted; t++) {
            rnd_id(titles_buf[t], 1, CX_ID_MAX);
            titles[t] = titles_buf[t];
        }
        in.promoted_title_ids = in.n_promoted ? titles : NULL;
        if ((in.has_campaign_code = coin())) rnd_id(in.campaign_code, 1, CX_ID_MAX);
        assert_same_as_generic(CX_REC_CAMPAIGN, &in, i);
        cr_assert_eq(cx_codec_decode_campaign(codec, buf.data, buf.len, &out, detail, sizeof detail), CX_DLQ_NONE,
                     "record %d: %s", i, detail);
        assert_campaign_eq(&in, &out);
        cx_campaign_clear(&out);
    }
}

static char str_pool[4][CX_ID_MAX + 1];
static const char *rnd_segment(int slot) {
    if (below(8) == 0) return NULL;
    rnd_bytes(str_pool[slot], 40);
    return str_pool[slot];
}

Test(codec, direct_wire_equals_generic_for_random_output_records) {
    static cx_profile_out_t pr;
    for (int i = 0; i < RANDOM_RECORDS; i++) {
        cx_segment_change_t s;
        memset(&s, 0, sizeof s);
        rnd_bytes(s.customer_id, CX_ID_MAX);
        s.ts_ms = rnd_i64();
        s.previous_segment = rnd_segment(0);
        s.segment = rnd_segment(1);
        s.r_score = rnd_i32(), s.f_score = rnd_i32(), s.m_score = rnd_i32(), s.recency_days = rnd_i32();
        s.frequency = rnd_i64(), s.monetary_minor = rnd_i64();
        rnd_bytes(s.cause, sizeof s.cause - 1);
        s.has_p_alive = coin(), s.p_alive = rnd_double();
        s.has_clv_minor = coin(), s.clv_minor = rnd_i64();
        assert_same_as_generic(CX_REC_SEGMENT_CHANGE, &s, i);

        cx_trigger_t t;
        memset(&t, 0, sizeof t);
        rnd_bytes(t.customer_id, CX_ID_MAX);
        t.ts_ms = rnd_i64();
        rnd_bytes(t.trigger_id, sizeof t.trigger_id - 1);
        t.kind = (cx_trigger_kind_t)below(CX_TRIG__COUNT);
        t.has_days_since_last_play = coin(), t.days_since_last_play = rnd_i32();
        t.has_usual_gap_days = coin(), t.usual_gap_days = rnd_double();
        t.has_p_alive = coin(), t.p_alive = rnd_double();
        t.segment = rnd_segment(2);
        t.suggested_action = (cx_action_t)below(CX_ACT__COUNT);
        if ((t.has_top_genre = coin())) rnd_bytes(t.top_genre, CX_SHORT_MAX);
        t.eligible = coin();
        if ((t.has_last_contact_campaign_id = coin())) rnd_bytes(t.last_contact_campaign_id, CX_ID_MAX);
        assert_same_as_generic(CX_REC_TRIGGER, &t, i);

        cx_response_t r;
        memset(&r, 0, sizeof r);
        rnd_bytes(r.customer_id, CX_ID_MAX);
        r.ts_ms = rnd_i64();
        rnd_bytes(r.response_id, CX_ID_MAX);
        rnd_bytes(r.campaign_id, CX_ID_MAX);
        rnd_bytes(r.send_event_id, CX_ID_MAX);
        rnd_bytes(r.response_event_id, CX_ID_MAX);
        r.response_type = (cx_response_type_t)below(2);
        r.action = (cx_response_action_t)below(2);
        r.amount_minor = rnd_i64();
        r.group = (cx_group_t)below(CX_GROUP__COUNT);
        r.latency_ms = rnd_i64();
        assert_same_as_generic(CX_REC_RESPONSE, &r, i);

        cx_kpi_t k;
        memset(&k, 0, sizeof k);
        rnd_bytes(k.campaign_id, CX_ID_MAX);
        k.ts_ms = rnd_i64(), k.as_of_ts_ms = rnd_i64();
        k.sent_test = rnd_i64(), k.sent_control = rnd_i64();
        k.responders_test_any = rnd_i64(), k.responders_test_hard = rnd_i64();
        k.responders_control_any = rnd_i64(), k.responders_control_hard = rnd_i64();
        k.retrievals = rnd_i64(), k.purchases = rnd_i64(), k.turnover_minor = rnd_i64();
        k.revenue_per_responder_minor = rnd_i64();
        k.response_rate_test = rnd_double(), k.response_rate_control = rnd_double();
        k.has_lift = coin(), k.lift = rnd_double();
        k.has_lift_p_value = coin(), k.lift_p_value = rnd_double();
        k.closed = coin();
        assert_same_as_generic(CX_REC_KPI, &k, i);

        cx_event_t ev = rnd_event((cx_event_type_t)below(4), coin());
        cx_enriched_t en;
        memset(&en, 0, sizeof en);
        en.event = &ev;
        en.has_segment = coin();
        en.segment = rnd_segment(3);
        en.r_score = rnd_i32(), en.f_score = rnd_i32(), en.m_score = rnd_i32();
        en.has_nps_last = coin(), en.nps_last = rnd_i32();
        en.has_p_alive = coin(), en.p_alive = rnd_double();
        if ((en.has_acquisition_campaign_id = coin())) rnd_bytes(en.acquisition_campaign_id, CX_ID_MAX);
        en.newsletter_recipient = coin();
        if ((en.has_response_campaign_id = coin())) rnd_bytes(en.response_campaign_id, CX_ID_MAX);
        assert_same_as_generic(CX_REC_ENRICHED, &en, i);

        memset(&pr, 0, sizeof pr);
        rnd_bytes(pr.customer_id, CX_ID_MAX);
        pr.has_tx = coin();
        pr.first_transaction_ts = rnd_i64(), pr.last_transaction_ts = rnd_i64();
        pr.has_last_play_ts = coin(), pr.last_play_ts = rnd_i64();
        pr.recency_days = rnd_i32(), pr.frequency = rnd_i64(), pr.monetary_minor = rnd_i64();
        pr.r_score = rnd_i32(), pr.f_score = rnd_i32(), pr.m_score = rnd_i32();
        pr.segment = rnd_segment(0);
        pr.purchases_total = rnd_i64(), pr.revenue_total_minor = rnd_i64(), pr.plays_total = rnd_i64();
        pr.has_nps_last = coin(), pr.nps_last = rnd_i32(), pr.nps_count = rnd_i64();
        pr.bgnbd_x = rnd_i64(), pr.repeat_revenue_minor = rnd_i64();
        pr.bgnbd_t_x_days = rnd_i64(), pr.bgnbd_T_days = rnd_i64();
        pr.has_p_alive = coin(), pr.p_alive = rnd_double();
        pr.expected_transactions_90d = rnd_double();
        pr.clv_minor = rnd_i64();
        if ((pr.has_acquisition_campaign_id = coin())) rnd_bytes(pr.acquisition_campaign_id, CX_ID_MAX);
        pr.newsletter_recipient = coin();
        pr.n_contacts = below(CX_PROFILE_CONTACTS_OUT + 4); /* more than the output holds: capped */
        for (size_t c = 0; c < CX_PROFILE_CONTACTS_OUT; c++) {
            rnd_bytes(pr.contacts[c].campaign_id, CX_ID_MAX);
            pr.contacts[c].campaign_type = (cx_campaign_type_t)below(CX_CT__COUNT);
            pr.contacts[c].channel = (cx_channel_t)below(CX_CH__COUNT);
            pr.contacts[c].group = (cx_group_t)below(CX_GROUP__COUNT);
            pr.contacts[c].ts_ms = rnd_i64();
        }
        assert_same_as_generic(CX_REC_PROFILE, &pr, i);
    }
    cx_buf_free(&gbuf);
}

Test(codec, enum_outside_its_symbols_is_invalid_on_both_encoders_and_writes_nothing) {
    cx_trigger_t t = {0};
    strcpy(t.customer_id, "c");
    t.kind = (cx_trigger_kind_t)CX_TRIG__COUNT;
    cx_buf_append(&buf, "keep", 4);
    cr_assert_eq(cx_codec_encode(codec, CX_REC_TRIGGER, &t, CX_FMT_WIRE, &buf), CX_ERR_INVALID);
    cr_assert_eq(buf.len, 4);
    cr_assert_eq(cx_codec_encode_generic(codec, CX_REC_TRIGGER, &t, &buf), CX_ERR_INVALID);
    cx_event_t e = purchase();
    e.u.purchase.kind = (cx_purchase_kind_t)-1;
    cr_assert_eq(cx_codec_encode(codec, CX_REC_PURCHASE, &e, CX_FMT_WIRE, &buf), CX_ERR_INVALID);
    cr_assert_eq(buf.len, 4);
}

Test(codec, mutated_wire_events_never_crash_and_truncations_are_decode_errors) {
    static const cx_event_type_t types[] = {CX_EV_PLAY, CX_EV_PURCHASE, CX_EV_EMAIL_SEND, CX_EV_SURVEY};
    for (int i = 0; i < RANDOM_RECORDS; i++) {
        cx_event_type_t type = types[i % 4];
        cx_record_kind_t kind = cx_codec_kind_of_event(type);
        cx_event_t in = rnd_event(type, true), out;
        encode(&in);
        size_t cut = 5 + below(buf.len - 5);
        cr_assert_eq(cx_codec_decode_event(codec, kind, buf.data, cut, &out, detail, sizeof detail),
                     CX_DLQ_DECODE_ERROR, "kind %d record %d cut at %zu: %s", (int)kind, i, cut, detail);
        for (int m = 0; m < 3; m++)
            buf.data[5 + below(buf.len - 5)] = (uint8_t)rnd();
        cx_dlq_code_t code = cx_codec_decode_event(codec, kind, buf.data, buf.len, &out, detail, sizeof detail);
        cr_assert((int)code >= 0 && (int)code < CX_DLQ__COUNT, "code %d", (int)code);
    }
}

/* ---------- the byte rules of ids and tokens (checked on every event, eight bytes at a time) ---------- */

static bool ref_id_byte(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '@' || c == '-';
}
static bool ref_token_byte(unsigned char c) {
    return c >= 0x20 && c != 0x7F;
}
static bool ref_valid(const unsigned char *s, size_t n, bool (*ok)(unsigned char)) {
    if (n < 1 || n > CX_ID_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!ok(s[i])) return false;
    return true;
}

/* Every byte value at every position of strings of 1..40 bytes (whole words, tails, both), on
 * backgrounds of valid bytes that sit next to the limits (0x20, 0x7E, 0x80, 0xFF: a borrow from a
 * neighbouring byte must neither hide nor invent a control character), and pairs of edge bytes in
 * adjacent positions; lengths 0, 128 and 129. */
Test(codec, id_and_token_checks_follow_the_byte_rules) {
    static const unsigned char bg_tok[] = {0x20, 0x7E, 0x80, 0xFF, 'a'};
    static const unsigned char edges[] = {0x00, 0x01, 0x1F, 0x20, 0x21, 0x2C, 0x2D, 0x2F, 0x3A, 0x3B, 0x3F,
                                          0x40, 0x5A, 0x5B, 0x5F, 0x60, 0x7A, 0x7B, 0x7E, 0x7F, 0x80, 0xFF};
    unsigned char s[CX_ID_MAX + 2];
    long checked = 0;
    for (size_t n = 1; n <= 40; n++)
        for (size_t b = 0; b < sizeof bg_tok; b++)
            for (size_t pos = 0; pos < n; pos++)
                for (int c = 0; c < 256; c++) {
                    memset(s, bg_tok[b], n);
                    s[pos] = (unsigned char)c;
                    cr_assert_eq(cx_token_valid((const char *)s, n), ref_valid(s, n, ref_token_byte),
                                 "token: byte 0x%02x at %zu of %zu on 0x%02x", c, pos, n, bg_tok[b]);
                    memset(s, 'z', n);
                    s[pos] = (unsigned char)c;
                    cr_assert_eq(cx_id_valid((const char *)s, n), ref_valid(s, n, ref_id_byte),
                                 "id: byte 0x%02x at %zu of %zu", c, pos, n);
                    checked += 2;
                }
    for (size_t n = 2; n <= 24; n++)
        for (size_t pos = 0; pos + 1 < n; pos++)
            for (size_t a = 0; a < sizeof edges; a++)
                for (size_t c = 0; c < sizeof edges; c++) {
                    memset(s, 0x80, n);
                    s[pos] = edges[a];
                    s[pos + 1] = edges[c];
                    cr_assert_eq(cx_token_valid((const char *)s, n), ref_valid(s, n, ref_token_byte),
                                 "token: 0x%02x 0x%02x at %zu of %zu", edges[a], edges[c], pos, n);
                    memset(s, '_', n);
                    s[pos] = edges[a];
                    s[pos + 1] = edges[c];
                    cr_assert_eq(cx_id_valid((const char *)s, n), ref_valid(s, n, ref_id_byte));
                    checked += 2;
                }
    memset(s, 'a', sizeof s);
    cr_assert(cx_token_valid((const char *)s, CX_ID_MAX) && cx_id_valid((const char *)s, CX_ID_MAX));
    cr_assert_not(cx_token_valid((const char *)s, CX_ID_MAX + 1) || cx_id_valid((const char *)s, CX_ID_MAX + 1));
    cr_assert_not(cx_token_valid((const char *)s, 0) || cx_id_valid((const char *)s, 0));
    cr_assert_gt(checked, 100000);
}
