/*
 * fuzz_decode.c — fuzz target for everything that reads untrusted bytes: the wire decoder of the
 * four input kinds and campaigns, and the replay JSON decoder. Built two ways:
 *   - with clang's libFuzzer:  clang -g -O1 -fsanitize=fuzzer,address,undefined -DCX_LIBFUZZER ...
 *   - with gcc (no libFuzzer here): a deterministic driver that mutates valid records for N
 *     iterations under ASan/UBSan:  tests/fuzz/build.sh && build-fuzz/fuzz_decode 200000
 * A finding is any sanitizer report or crash; a DLQ code is a correct answer, never a finding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static cx_codec_t *codec;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256], detail[256];
    if (!codec && !(codec = cx_codec_new(err, sizeof err))) abort();
    cx_event_t ev;
    cx_campaign_t camp;
    memset(&camp, 0, sizeof camp);
    static const cx_record_kind_t kinds[] = {CX_REC_PLAY, CX_REC_PURCHASE, CX_REC_EMAIL_SEND, CX_REC_SURVEY};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        (void)cx_codec_decode_event(codec, kinds[i], data, size, &ev, detail, sizeof detail);
    (void)cx_codec_decode_campaign(codec, data, size, &camp, detail, sizeof detail);
    cx_campaign_clear(&camp);
    bool is_campaign = false;
    (void)cx_codec_decode_json(codec, (const char *)data, size, &ev, &camp, &is_campaign, detail, sizeof detail);
    cx_campaign_clear(&camp);
    return 0;
}

#ifndef CX_LIBFUZZER
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

int main(int argc, char **argv) {
    long iters = argc > 1 ? atol(argv[1]) : 100000;
    char err[256];
    if (!(codec = cx_codec_new(err, sizeof err))) {
        fprintf(stderr, "fuzz_decode: %s\n", err);
        return 1;
    }
    /* seeds: one valid record of each input kind, wire and JSON */
    cx_event_t ev;
    memset(&ev, 0, sizeof ev);
    strcpy(ev.event_id, "e1");
    strcpy(ev.customer_id, "c1");
    ev.ts_ms = 1736121600000;
    cx_buf_t seeds[8] = {CX_BUF_INIT};
    int n_seeds = 0;
    for (int t = 0; t < 4; t++) {
        ev.type = (cx_event_type_t)t;
        if (t == CX_EV_PLAY) {
            strcpy(ev.u.play.title_id, "t1");
            ev.u.play.seconds_watched = 600;
        } else if (t == CX_EV_PURCHASE) {
            ev.u.purchase.amount_minor = 999;
            memcpy(ev.u.purchase.currency, "SEK", 4);
        } else if (t == CX_EV_EMAIL_SEND) {
            strcpy(ev.u.email_send.campaign_id, "camp1");
        } else {
            strcpy(ev.u.survey.survey_id, "s1");
            strcpy(ev.u.survey.touchpoint, "general");
            ev.u.survey.score = 9;
            ev.u.survey.has_comment = true;
            ev.u.survey.comment = "bra service";
            ev.u.survey.comment_len = 11;
        }
        for (int f = 0; f < 2; f++)
            if (cx_codec_encode(codec, cx_codec_kind_of_event(ev.type), &ev, (cx_format_t)f, &seeds[n_seeds]) == CX_OK)
                n_seeds++;
        memset(&ev.u, 0, sizeof ev.u);
    }
    uint8_t buf[4096];
    for (long i = 0; i < iters; i++) {
        const cx_buf_t *s = &seeds[next() % (uint64_t)n_seeds];
        size_t len = s->len < sizeof buf ? s->len : sizeof buf;
        memcpy(buf, s->data, len);
        int muts = 1 + (int)(next() % 8);
        for (int m = 0; m < muts; m++) {
            switch (next() % 4) {
            case 0:
                if (len) buf[next() % len] = (uint8_t)next();
                break; /* replace a byte */
            case 1:
                if (len) len = next() % len;
                break; /* truncate */
            case 2:
                if (len < sizeof buf) buf[len++] = (uint8_t)next();
                break; /* append */
            default:
                if (len) buf[next() % len] ^= (uint8_t)(1u << (next() % 8)); /* flip a bit */
            }
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    for (int i = 0; i < n_seeds; i++)
        cx_buf_free(&seeds[i]);
    cx_codec_destroy(codec);
    printf("fuzz_decode: %ld inputs, no crash\n", iters);
    return 0;
}
#endif
