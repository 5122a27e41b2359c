/*
 * codec.c — Avro wire format and replay JSON for the records of DESIGN §5 (see codec.h).
 * Placeholder while the implementation lands: every call fails cleanly.
 */
#include "codec.h"

#include <stdlib.h>

struct cx_codec {
    int unused;
};

cx_codec_t *cx_codec_new(char *errstr, size_t errstr_size) {
    cx_seterr(errstr, errstr_size, "codec not implemented yet");
    return NULL;
}
void cx_codec_destroy(cx_codec_t *c) { free(c); }
void cx_codec_set_schema_id(cx_codec_t *c, cx_record_kind_t kind, int32_t id) {
    (void)c; (void)kind; (void)id;
}
int32_t cx_codec_schema_id(const cx_codec_t *c, cx_record_kind_t kind) { (void)c; return (int32_t)kind; }
const char *cx_codec_schema_text(const cx_codec_t *c, cx_record_kind_t kind) { (void)c; (void)kind; return NULL; }
cx_record_kind_t cx_codec_kind_of_event(cx_event_type_t t) {
    switch (t) {
    case CX_EV_PLAY: return CX_REC_PLAY;
    case CX_EV_PURCHASE: return CX_REC_PURCHASE;
    case CX_EV_EMAIL_SEND: return CX_REC_EMAIL_SEND;
    case CX_EV_SURVEY: return CX_REC_SURVEY;
    default: return CX_REC_CAMPAIGN;
    }
}
cx_dlq_code_t cx_codec_decode_event(cx_codec_t *c, cx_record_kind_t expected, const void *buf, size_t len,
                                    cx_event_t *out, char *detail, size_t detail_size) {
    (void)c; (void)expected; (void)buf; (void)len; (void)out;
    cx_seterr(detail, detail_size, "codec not implemented yet");
    return CX_DLQ_DECODE_ERROR;
}
cx_dlq_code_t cx_codec_decode_campaign(cx_codec_t *c, const void *buf, size_t len, cx_campaign_t *out,
                                       char *detail, size_t detail_size) {
    (void)c; (void)buf; (void)len; (void)out;
    cx_seterr(detail, detail_size, "codec not implemented yet");
    return CX_DLQ_DECODE_ERROR;
}
cx_dlq_code_t cx_codec_decode_json(cx_codec_t *c, const char *line, size_t len, cx_event_t *ev,
                                   cx_campaign_t *camp, bool *is_campaign, char *detail, size_t detail_size) {
    (void)c; (void)line; (void)len; (void)ev; (void)camp; (void)is_campaign;
    cx_seterr(detail, detail_size, "codec not implemented yet");
    return CX_DLQ_DECODE_ERROR;
}
cx_dlq_code_t cx_codec_check_event(const cx_event_t *ev, const cx_check_opts_t *o, char *detail,
                                   size_t detail_size) {
    (void)ev; (void)o; (void)detail; (void)detail_size;
    return CX_DLQ_NONE;
}
cx_err_t cx_codec_encode(cx_codec_t *c, cx_record_kind_t kind, const void *rec, cx_format_t fmt, cx_buf_t *out) {
    (void)c; (void)kind; (void)rec; (void)fmt; (void)out;
    return CX_ERR_INVALID;
}
