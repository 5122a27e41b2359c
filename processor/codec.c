/*
 * codec.c — Avro wire format and replay JSON for the records of DESIGN §5 (see codec.h).
 *
 * Every record kind has one parsed schema (from the .avsc embedded in the binary) and one reused
 * avro-c generic value. The hot paths do not use that value: the wire format of the four input
 * kinds is read field by field into a raw_event_t (our own bounds-checked reader: avro_value_read
 * mallocs a string's claimed length before checking it, so four hostile bytes could ask for
 * gigabytes), and every record kind is written to the wire by a direct encoder straight from its
 * struct; cx_codec_new replays each direct encoder/reader once and compares the fields with the
 * .avsc, so the two cannot drift. A JSON line (jansson, then a schema-driven walk that applies the
 * .avsc defaults) and a Campaign on the wire fill the generic value; the JSON event path extracts a
 * raw_event_t from it, and validate_event applies every check to both, so both input paths reject
 * the same records with the same codes. JSON output fills the value from the struct and walks it
 * (unions unwrapped, enums as symbols, shortest round-trip doubles); cx_codec_encode_generic writes
 * it with avro_value_write, the reference the direct encoders are tested against.
 */
#include "codec.h"

#include <avro.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"

#define N_KINDS 11

static const struct kind_info {
    cx_record_kind_t kind;
    const char *file;
    const char *record; /* Avro record name in the file */
} kind_infos[N_KINDS] = {
    {CX_REC_PLAY, "play.avsc", "PlayEvent"},
    {CX_REC_PURCHASE, "purchase.avsc", "PurchaseEvent"},
    {CX_REC_EMAIL_SEND, "email_send.avsc", "EmailSendEvent"},
    {CX_REC_SURVEY, "survey.avsc", "SurveyEvent"},
    {CX_REC_CAMPAIGN, "campaign.avsc", "Campaign"},
    {CX_REC_SEGMENT_CHANGE, "segment_change.avsc", "SegmentChange"},
    {CX_REC_TRIGGER, "disengagement_trigger.avsc", "DisengagementTrigger"},
    {CX_REC_RESPONSE, "campaign_response.avsc", "CampaignResponse"},
    {CX_REC_KPI, "campaign_kpi.avsc", "CampaignKpi"},
    {CX_REC_ENRICHED, "enriched.avsc", "EnrichedEvent"},
    {CX_REC_PROFILE, "profile.avsc", "Profile"},
};

typedef struct kind_slot {
    int32_t id;
    const char *text; /* embedded .avsc, NUL-terminated */
    avro_schema_t schema;
    avro_value_iface_t *iface;
    avro_value_t value;
    bool has_value;
    json_t *avsc; /* the .avsc parsed by jansson: field defaults for the JSON path */
} kind_slot_t;

struct cx_codec {
    kind_slot_t s[N_KINDS];
    cx_buf_t scratch; /* NUL-terminated copy of a string for avro_value_set_string_len */
    cx_buf_t comment; /* the survey comment a wire-decoded event borrows */
    avro_writer_t writer;
};

static int kind_index(cx_record_kind_t k) {
    for (int i = 0; i < N_KINDS; i++)
        if (kind_infos[i].kind == k) return i;
    return -1;
}

/* Symbol tables the .avsc enums must match exactly (order = C enum values). */
static const char *const event_type_symbols[] = {"play", "purchase", "email_send", "survey"};
static const struct enum_table {
    const char *name;
    const char *const *symbols;
    int n;
} enum_tables[] = {
    {"PurchaseKind", cx_purchase_kind_names, CX_PK__COUNT},
    {"Group", cx_group_names, CX_GROUP__COUNT},
    {"Channel", cx_channel_names, CX_CH__COUNT},
    {"CampaignType", cx_campaign_type_names, CX_CT__COUNT},
    {"TriggerKind", cx_trigger_kind_names, CX_TRIG__COUNT},
    {"SuggestedAction", cx_action_names, CX_ACT__COUNT},
    {"ResponseType", (const char *const[]){"HARD", "SOFT"}, 2},
    {"ResponseAction", (const char *const[]){"PLAY", "PURCHASE"}, 2},
    {"EventType", event_type_symbols, 4},
};

static bool check_enums(avro_schema_t s, const char *file, char *errstr, size_t errstr_size) {
    switch (avro_typeof(s)) {
    case AVRO_RECORD:
        for (size_t i = 0; i < avro_schema_record_size(s); i++)
            if (!check_enums(avro_schema_record_field_get_by_index(s, (int)i), file, errstr, errstr_size)) return false;
        return true;
    case AVRO_UNION:
        for (size_t i = 0; i < avro_schema_union_size(s); i++)
            if (!check_enums(avro_schema_union_branch(s, (int)i), file, errstr, errstr_size)) return false;
        return true;
    case AVRO_ARRAY: return check_enums(avro_schema_array_items(s), file, errstr, errstr_size);
    case AVRO_MAP: return check_enums(avro_schema_map_values(s), file, errstr, errstr_size);
    case AVRO_ENUM: {
        const char *name = avro_schema_name(s);
        for (size_t t = 0; t < sizeof enum_tables / sizeof enum_tables[0]; t++) {
            if (strcmp(enum_tables[t].name, name) != 0) continue;
            bool same = avro_schema_enum_number_of_symbols(s) == enum_tables[t].n;
            for (int i = 0; same && i < enum_tables[t].n; i++)
                same = strcmp(avro_schema_enum_get(s, i), enum_tables[t].symbols[i]) == 0;
            if (!same) cx_seterr(errstr, errstr_size, "schema %s: enum %s symbols differ from the code's", file, name);
            return same;
        }
        cx_seterr(errstr, errstr_size, "schema %s: enum %s unknown to the code", file, name);
        return false;
    }
    default: return true;
    }
}

void cx_codec_destroy(cx_codec_t *c) {
    if (!c) return;
    for (int i = 0; i < N_KINDS; i++) {
        kind_slot_t *s = &c->s[i];
        if (s->has_value) avro_value_decref(&s->value);
        if (s->iface) avro_value_iface_decref(s->iface);
        if (s->schema) avro_schema_decref(s->schema);
        if (s->avsc) json_decref(s->avsc);
    }
    if (c->writer) avro_writer_free(c->writer);
    cx_buf_free(&c->scratch);
    cx_buf_free(&c->comment);
    free(c);
}

static bool check_ids_json(char *errstr, size_t errstr_size) {
    const struct cx_embedded_file *f = cx_embedded_find("ids.json");
    if (!f) {
        cx_seterr(errstr, errstr_size, "schemas/ids.json is not embedded");
        return false;
    }
    json_error_t jerr;
    json_t *ids = json_loadb(f->data, f->size, 0, &jerr);
    bool ok = ids && json_is_object(ids);
    if (!ok) {
        cx_seterr(errstr, errstr_size, "schemas/ids.json does not parse: %s", ids ? "not an object" : jerr.text);
        goto done;
    }
    for (int i = 0; ok && i < N_KINDS; i++) {
        char key[16];
        snprintf(key, sizeof key, "%d", (int)kind_infos[i].kind);
        const char *file = json_string_value(json_object_get(ids, key));
        if (!file || strcmp(file, kind_infos[i].file) != 0) {
            cx_seterr(errstr, errstr_size, "schemas/ids.json: id %s must map to %s", key, kind_infos[i].file);
            ok = false;
        }
    }
    if (ok && json_object_size(ids) != N_KINDS) {
        cx_seterr(errstr, errstr_size, "schemas/ids.json: %zu ids, expected %d", json_object_size(ids), N_KINDS);
        ok = false;
    }
done:
    json_decref(ids);
    return ok;
}

static bool direct_self_check(cx_codec_t *c, char *errstr, size_t errstr_size);

cx_codec_t *cx_codec_new(char *errstr, size_t errstr_size) {
    cx_codec_t *c = calloc(1, sizeof *c);
    if (!c) {
        cx_seterr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    static const char empty[1];
    if (!check_ids_json(errstr, errstr_size)) goto fail;
    for (int i = 0; i < N_KINDS; i++) {
        const struct kind_info *k = &kind_infos[i];
        kind_slot_t *s = &c->s[i];
        s->id = (int32_t)k->kind;
        const struct cx_embedded_file *f = cx_embedded_find(k->file);
        if (!f) {
            cx_seterr(errstr, errstr_size, "schema %s is not embedded", k->file);
            goto fail;
        }
        s->text = f->data;
        if (avro_schema_from_json_length(f->data, f->size, &s->schema) != 0) {
            s->schema = NULL;
            cx_seterr(errstr, errstr_size, "schema %s does not parse: %s", k->file, avro_strerror());
            goto fail;
        }
        if (!is_avro_record(s->schema) || strcmp(avro_schema_name(s->schema), k->record) != 0) {
            cx_seterr(errstr, errstr_size, "schema %s: expected record %s", k->file, k->record);
            goto fail;
        }
        if (!check_enums(s->schema, k->file, errstr, errstr_size)) goto fail;
        json_error_t jerr;
        if (!(s->avsc = json_loadb(f->data, f->size, 0, &jerr))) {
            cx_seterr(errstr, errstr_size, "schema %s does not parse as JSON: %s", k->file, jerr.text);
            goto fail;
        }
        if (!(s->iface = avro_generic_class_from_schema(s->schema)) ||
            avro_generic_value_new(s->iface, &s->value) != 0) {
            cx_seterr(errstr, errstr_size, "schema %s: cannot build a value: %s", k->file, avro_strerror());
            goto fail;
        }
        s->has_value = true;
    }
    if (!(c->writer = avro_writer_memory(empty, 0)) || cx_buf_reserve(&c->scratch, 256) != CX_OK ||
        cx_buf_reserve(&c->comment, 256) != CX_OK) {
        cx_seterr(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (!direct_self_check(c, errstr, errstr_size)) goto fail;
    return c;
fail:
    cx_codec_destroy(c);
    return NULL;
}

void cx_codec_set_schema_id(cx_codec_t *c, cx_record_kind_t kind, int32_t id) {
    int i = kind_index(kind);
    if (c && i >= 0) c->s[i].id = id;
}

int32_t cx_codec_schema_id(const cx_codec_t *c, cx_record_kind_t kind) {
    int i = kind_index(kind);
    return c && i >= 0 ? c->s[i].id : -1;
}

const char *cx_codec_schema_text(const cx_codec_t *c, cx_record_kind_t kind) {
    int i = kind_index(kind);
    return c && i >= 0 ? c->s[i].text : NULL;
}

cx_record_kind_t cx_codec_kind_of_event(cx_event_type_t t) {
    switch (t) {
    case CX_EV_PLAY: return CX_REC_PLAY;
    case CX_EV_PURCHASE: return CX_REC_PURCHASE;
    case CX_EV_EMAIL_SEND: return CX_REC_EMAIL_SEND;
    case CX_EV_SURVEY: return CX_REC_SURVEY;
    case CX_EV_CAMPAIGN:
    case CX_EV__COUNT: break;
    }
    return CX_REC_CAMPAIGN;
}

/* ---- Avro binary -> value ---------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p, *end;
} rd_t;

static bool rd_long(rd_t *r, int64_t *v) {
    uint64_t u = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return false;
        uint8_t b = *r->p++;
        if (shift == 63 && (b & 0x7E)) return false; /* more than 64 bits */
        u |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return true;
        }
    }
    return false;
}

/* Copies s[0..n) with a NUL into the codec's scratch buffer and stores it as the string value:
 * avro-c's string length convention counts the terminator. */
static int set_string(cx_codec_t *c, avro_value_t *v, const void *s, size_t n) {
    c->scratch.len = 0;
    if (cx_buf_append(&c->scratch, s, n) != CX_OK) return ENOMEM; /* appends the NUL too */
    return avro_value_set_string_len(v, (char *)c->scratch.data, n + 1);
}

#define FIELD(f) ((f) ? (f) : "record")

static cx_dlq_code_t truncated(const char *field, char *d, size_t dn) {
    cx_seterr(d, dn, "Avro value truncated or malformed at %s", FIELD(field));
    return CX_DLQ_DECODE_ERROR;
}

static cx_dlq_code_t bin_read(cx_codec_t *c, rd_t *r, avro_value_t *v, const char *field, char *d, size_t dn) {
    avro_schema_t schema = avro_value_get_schema(v);
    int64_t l;
    int rc = 0;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL: rc = avro_value_set_null(v); break;
    case AVRO_BOOLEAN:
        if (r->p >= r->end || *r->p > 1) return truncated(field, d, dn);
        rc = avro_value_set_boolean(v, *r->p++ == 1);
        break;
    case AVRO_INT32:
        if (!rd_long(r, &l) || l < INT32_MIN || l > INT32_MAX) return truncated(field, d, dn);
        rc = avro_value_set_int(v, (int32_t)l);
        break;
    case AVRO_INT64:
        if (!rd_long(r, &l)) return truncated(field, d, dn);
        rc = avro_value_set_long(v, l);
        break;
    case AVRO_FLOAT: {
        if (r->end - r->p < 4) return truncated(field, d, dn);
        uint32_t u = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        r->p += 4;
        rc = avro_value_set_float(v, f);
        break;
    }
    case AVRO_DOUBLE: {
        if (r->end - r->p < 8) return truncated(field, d, dn);
        uint64_t u = 0;
        for (int i = 7; i >= 0; i--)
            u = u << 8 | r->p[i];
        double x;
        memcpy(&x, &u, 8);
        r->p += 8;
        rc = avro_value_set_double(v, x);
        break;
    }
    case AVRO_STRING:
    case AVRO_BYTES:
        if (!rd_long(r, &l) || l < 0 || l > r->end - r->p) return truncated(field, d, dn);
        if (avro_value_get_type(v) == AVRO_STRING)
            rc = set_string(c, v, r->p, (size_t)l);
        else
            rc = avro_value_set_bytes(v, (void *)r->p, (size_t)l);
        r->p += l;
        break;
    case AVRO_FIXED: {
        int64_t n = avro_schema_fixed_size(schema);
        if (r->end - r->p < n) return truncated(field, d, dn);
        rc = avro_value_set_fixed(v, (void *)r->p, (size_t)n);
        r->p += n;
        break;
    }
    case AVRO_ENUM:
        if (!rd_long(r, &l)) return truncated(field, d, dn);
        if (l < 0 || l >= avro_schema_enum_number_of_symbols(schema)) {
            cx_seterr(d, dn, "%s: enum index %" PRId64 " outside 0..%d", FIELD(field), l,
                      avro_schema_enum_number_of_symbols(schema) - 1);
            return CX_DLQ_OUT_OF_RANGE;
        }
        rc = avro_value_set_enum(v, (int)l);
        break;
    case AVRO_UNION: {
        if (!rd_long(r, &l) || l < 0 || (size_t)l >= avro_schema_union_size(schema)) return truncated(field, d, dn);
        avro_value_t branch;
        if (avro_value_set_branch(v, (int)l, &branch) != 0) return truncated(field, d, dn);
        return bin_read(c, r, &branch, field, d, dn);
    }
    case AVRO_RECORD: {
        size_t n;
        avro_value_get_size(v, &n);
        for (size_t i = 0; i < n; i++) {
            avro_value_t child;
            const char *name;
            avro_value_get_by_index(v, i, &child, &name);
            cx_dlq_code_t code = bin_read(c, r, &child, name, d, dn);
            if (code != CX_DLQ_NONE) return code;
        }
        return CX_DLQ_NONE;
    }
    case AVRO_ARRAY:
    case AVRO_MAP: {
        bool is_map = avro_value_get_type(v) == AVRO_MAP;
        avro_value_reset(v);
        for (;;) {
            int64_t count;
            if (!rd_long(r, &count)) return truncated(field, d, dn);
            if (count == 0) break;
            if (count < 0) {
                int64_t bytes;
                if (count == INT64_MIN || !rd_long(r, &bytes)) return truncated(field, d, dn);
                count = -count;
            }
            /* Every element of our schemas takes at least one byte: a count beyond the remaining
             * bytes is a lie, refused before it costs memory. */
            if (count > r->end - r->p) return truncated(field, d, dn);
            for (int64_t i = 0; i < count; i++) {
                avro_value_t elem;
                if (is_map) {
                    int64_t kl;
                    if (!rd_long(r, &kl) || kl < 0 || kl > r->end - r->p) return truncated(field, d, dn);
                    c->scratch.len = 0;
                    if (cx_buf_append(&c->scratch, r->p, (size_t)kl) != CX_OK) return truncated(field, d, dn);
                    r->p += kl;
                    if (avro_value_add(v, (char *)c->scratch.data, &elem, NULL, NULL) != 0)
                        return truncated(field, d, dn);
                } else if (avro_value_append(v, &elem, NULL) != 0) {
                    return truncated(field, d, dn);
                }
                cx_dlq_code_t code = bin_read(c, r, &elem, field, d, dn);
                if (code != CX_DLQ_NONE) return code;
            }
        }
        return CX_DLQ_NONE;
    }
    default: return truncated(field, d, dn);
    }
    return rc == 0 ? CX_DLQ_NONE : truncated(field, d, dn);
}

/* ---- JSON -> value ----------------------------------------------------------------------- */

/* The jansson form of the record called `name` inside an .avsc tree, or NULL. */
static json_t *find_record_json(json_t *j, const char *name) {
    if (json_is_object(j)) {
        const char *type = json_string_value(json_object_get(j, "type"));
        const char *n = json_string_value(json_object_get(j, "name"));
        if (type && n && strcmp(type, "record") == 0 && strcmp(n, name) == 0) return j;
        const char *key;
        json_t *val;
        json_object_foreach(j, key, val) {
            json_t *r = find_record_json(val, name);
            if (r) return r;
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *val;
        json_array_foreach(j, i, val) {
            json_t *r = find_record_json(val, name);
            if (r) return r;
        }
    }
    return NULL;
}

typedef struct jctx {
    cx_codec_t *c;
    json_t *avsc;
    char *d;
    size_t dn;
} jctx_t;

static cx_dlq_code_t json_fill(jctx_t *x, json_t *j, avro_value_t *v, const char *field);

static cx_dlq_code_t json_type_error(jctx_t *x, const char *field, const char *want) {
    cx_seterr(x->d, x->dn, "%s: expected %s", FIELD(field), want);
    return CX_DLQ_DECODE_ERROR;
}

static bool union_has_null(avro_schema_t u) {
    for (size_t i = 0; i < avro_schema_union_size(u); i++)
        if (is_avro_null(avro_schema_union_branch(u, (int)i))) return true;
    return false;
}

/* Which branch of a union an unwrapped JSON value belongs to (DESIGN §3 writes unions
 * unwrapped), or -1. */
static int union_branch_for(avro_schema_t u, json_t *j) {
    int only = -1, n_nonnull = 0;
    for (size_t i = 0; i < avro_schema_union_size(u); i++) {
        avro_schema_t b = avro_schema_union_branch(u, (int)i);
        avro_type_t t = avro_typeof(b);
        if (t == AVRO_NULL) {
            if (json_is_null(j)) return (int)i;
            continue;
        }
        n_nonnull++;
        only = (int)i;
        bool fits =
            (json_is_string(j) && (t == AVRO_STRING || t == AVRO_ENUM || t == AVRO_BYTES)) ||
            (json_is_integer(j) && (t == AVRO_INT32 || t == AVRO_INT64 || t == AVRO_DOUBLE || t == AVRO_FLOAT)) ||
            (json_is_real(j) && (t == AVRO_DOUBLE || t == AVRO_FLOAT)) || (json_is_boolean(j) && t == AVRO_BOOLEAN) ||
            (json_is_array(j) && t == AVRO_ARRAY) || (json_is_object(j) && (t == AVRO_RECORD || t == AVRO_MAP));
        if (fits) return (int)i;
    }
    return n_nonnull == 1 && !json_is_null(j) ? only : -1; /* let the branch report the type error */
}

static cx_dlq_code_t json_fill_record(jctx_t *x, json_t *j, avro_value_t *v) {
    if (!json_is_object(j)) return json_type_error(x, NULL, "an object");
    avro_schema_t schema = avro_value_get_schema(v);
    json_t *fields_json = NULL;
    size_t n;
    avro_value_get_size(v, &n);
    for (size_t i = 0; i < n; i++) {
        avro_value_t child;
        const char *name;
        avro_value_get_by_index(v, i, &child, &name);
        json_t *jv = json_object_get(j, name);
        avro_schema_t fs = avro_schema_record_field_get_by_index(schema, (int)i);
        bool nullable = is_avro_union(fs) && union_has_null(fs);
        if (!jv || (json_is_null(jv) && !nullable)) {
            json_t *def = NULL;
            if (!jv) {
                if (!fields_json) {
                    json_t *rj = find_record_json(x->avsc, avro_schema_name(schema));
                    fields_json = rj ? json_object_get(rj, "fields") : NULL;
                }
                def = json_object_get(json_array_get(fields_json, i), "default");
            }
            if (!def) {
                cx_seterr(x->d, x->dn, "%s field %s", jv ? "null required" : "missing required", name);
                return CX_DLQ_MISSING_FIELD;
            }
            /* An Avro default belongs to the union's first branch. */
            if (is_avro_union(fs)) {
                avro_value_t branch;
                if (avro_value_set_branch(&child, 0, &branch) != 0) return json_type_error(x, name, "a value");
                cx_dlq_code_t code = json_fill(x, def, &branch, name);
                if (code != CX_DLQ_NONE) return code;
                continue;
            }
            jv = def;
        }
        cx_dlq_code_t code = json_fill(x, jv, &child, name);
        if (code != CX_DLQ_NONE) return code;
    }
    return CX_DLQ_NONE;
}

static cx_dlq_code_t json_fill(jctx_t *x, json_t *j, avro_value_t *v, const char *field) {
    avro_schema_t schema = avro_value_get_schema(v);
    int rc = 0;
    switch (avro_value_get_type(v)) {
    case AVRO_NULL:
        if (!json_is_null(j)) return json_type_error(x, field, "null");
        rc = avro_value_set_null(v);
        break;
    case AVRO_BOOLEAN:
        if (!json_is_boolean(j)) return json_type_error(x, field, "true or false");
        rc = avro_value_set_boolean(v, json_is_true(j));
        break;
    case AVRO_INT32: {
        if (!json_is_integer(j)) return json_type_error(x, field, "an integer");
        json_int_t i = json_integer_value(j);
        if (i < INT32_MIN || i > INT32_MAX) {
            cx_seterr(x->d, x->dn, "%s %" JSON_INTEGER_FORMAT " does not fit a 32-bit int", FIELD(field), i);
            return CX_DLQ_OUT_OF_RANGE;
        }
        rc = avro_value_set_int(v, (int32_t)i);
        break;
    }
    case AVRO_INT64:
        if (!json_is_integer(j)) return json_type_error(x, field, "an integer");
        rc = avro_value_set_long(v, (int64_t)json_integer_value(j));
        break;
    case AVRO_FLOAT:
        if (!json_is_number(j)) return json_type_error(x, field, "a number");
        rc = avro_value_set_float(v, (float)json_number_value(j));
        break;
    case AVRO_DOUBLE:
        if (!json_is_number(j)) return json_type_error(x, field, "a number");
        rc = avro_value_set_double(v, json_number_value(j));
        break;
    case AVRO_STRING:
        if (!json_is_string(j)) return json_type_error(x, field, "a string");
        rc = avro_value_set_string_len(v, (char *)json_string_value(j), json_string_length(j) + 1);
        break;
    case AVRO_BYTES:
        if (!json_is_string(j)) return json_type_error(x, field, "a string");
        rc = avro_value_set_bytes(v, (void *)json_string_value(j), json_string_length(j));
        break;
    case AVRO_FIXED:
        if (!json_is_string(j) || (int64_t)json_string_length(j) != avro_schema_fixed_size(schema))
            return json_type_error(x, field, "a string of the fixed size");
        rc = avro_value_set_fixed(v, (void *)json_string_value(j), json_string_length(j));
        break;
    case AVRO_ENUM: {
        if (!json_is_string(j)) return json_type_error(x, field, "an enum symbol");
        int idx = avro_schema_enum_get_by_name(schema, json_string_value(j));
        if (idx < 0) {
            cx_seterr(x->d, x->dn, "%s: \"%.32s\" is not a %s symbol", FIELD(field), json_string_value(j),
                      avro_schema_name(schema));
            return CX_DLQ_OUT_OF_RANGE;
        }
        rc = avro_value_set_enum(v, idx);
        break;
    }
    case AVRO_UNION: {
        int b = union_branch_for(schema, j);
        if (b < 0) return json_type_error(x, field, "a value of the field's type");
        avro_value_t branch;
        if (avro_value_set_branch(v, b, &branch) != 0) return json_type_error(x, field, "a value");
        return json_fill(x, j, &branch, field);
    }
    case AVRO_RECORD: {
        if (!json_is_object(j)) return json_type_error(x, field, "an object");
        return json_fill_record(x, j, v);
    }
    case AVRO_ARRAY: {
        if (!json_is_array(j)) return json_type_error(x, field, "an array");
        avro_value_reset(v);
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e) {
            avro_value_t elem;
            if (avro_value_append(v, &elem, NULL) != 0) return json_type_error(x, field, "an array");
            cx_dlq_code_t code = json_fill(x, e, &elem, field);
            if (code != CX_DLQ_NONE) return code;
        }
        return CX_DLQ_NONE;
    }
    case AVRO_MAP: {
        if (!json_is_object(j)) return json_type_error(x, field, "an object");
        avro_value_reset(v);
        const char *key;
        json_t *e;
        json_object_foreach(j, key, e) {
            avro_value_t elem;
            if (avro_value_add(v, key, &elem, NULL, NULL) != 0) return json_type_error(x, field, "an object");
            cx_dlq_code_t code = json_fill(x, e, &elem, field);
            if (code != CX_DLQ_NONE) return code;
        }
        return CX_DLQ_NONE;
    }
    default: return json_type_error(x, field, "a supported type");
    }
    return rc == 0 ? CX_DLQ_NONE : json_type_error(x, field, "a storable value");
}

/* ---- value -> cx_event_t / cx_campaign_t, with every check --------------------------------- */

typedef struct ex {
    avro_value_t *rec;
    char *d;
    size_t dn;
    cx_dlq_code_t code;
} ex_t;

static bool ex_fail(ex_t *x, cx_dlq_code_t code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool ex_fail(ex_t *x, cx_dlq_code_t code, const char *fmt, ...) {
    x->code = code;
    if (x->d && x->dn) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->d, x->dn, fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool ex_field(ex_t *x, const char *name, avro_value_t *out) {
    if (avro_value_get_by_name(x->rec, name, out, NULL) != 0)
        return ex_fail(x, CX_DLQ_DECODE_ERROR, "schema has no field %s", name);
    return true;
}

/* Unwraps a nullable field: *has = false for the null branch, else *out = the value. */
static bool ex_nullable(ex_t *x, const char *name, bool *has, avro_value_t *out) {
    avro_value_t f;
    if (!ex_field(x, name, &f)) return false;
    if (avro_value_get_type(&f) != AVRO_UNION) {
        *has = true;
        *out = f;
        return true;
    }
    if (avro_value_get_current_branch(&f, out) != 0)
        return ex_fail(x, CX_DLQ_MISSING_FIELD, "field %s has no value", name);
    *has = avro_value_get_type(out) != AVRO_NULL;
    return true;
}

static bool ex_str_of(ex_t *x, const char *name, avro_value_t *f, const char **s, size_t *n) {
    size_t size;
    if (avro_value_get_string(f, s, &size) != 0) return ex_fail(x, CX_DLQ_DECODE_ERROR, "%s is not a string", name);
    *n = size ? size - 1 : 0; /* avro-c counts the NUL */
    return true;
}

static bool ex_str(ex_t *x, const char *name, const char **s, size_t *n) {
    avro_value_t f;
    return ex_field(x, name, &f) && ex_str_of(x, name, &f, s, n);
}

static bool ex_nstr(ex_t *x, const char *name, bool *has, const char **s, size_t *n) {
    avro_value_t f;
    if (!ex_nullable(x, name, has, &f)) return false;
    return !*has || ex_str_of(x, name, &f, s, n);
}

static bool ex_long(ex_t *x, const char *name, int64_t *v) {
    avro_value_t f;
    if (!ex_field(x, name, &f)) return false;
    if (avro_value_get_long(&f, v) != 0) return ex_fail(x, CX_DLQ_DECODE_ERROR, "%s is not a long", name);
    return true;
}

static bool ex_int(ex_t *x, const char *name, int32_t *v) {
    avro_value_t f;
    if (!ex_field(x, name, &f)) return false;
    if (avro_value_get_int(&f, v) != 0) return ex_fail(x, CX_DLQ_DECODE_ERROR, "%s is not an int", name);
    return true;
}

/* Enum index; the .avsc symbol order equals the C enum (checked at load). */
static bool ex_enum(ex_t *x, const char *name, int n_symbols, int *v) {
    avro_value_t f;
    if (!ex_field(x, name, &f)) return false;
    if (avro_value_get_enum(&f, v) != 0) return ex_fail(x, CX_DLQ_DECODE_ERROR, "%s is not an enum", name);
    if (*v < 0 || *v >= n_symbols)
        return ex_fail(x, CX_DLQ_OUT_OF_RANGE, "%s: enum index %d outside 0..%d", name, *v, n_symbols - 1);
    return true;
}

static const char *len_problem(size_t n, size_t max) {
    return n == 0 ? "is empty" : n > max ? "is too long" : NULL;
}

/* customer_id, campaign_id: cx_id_valid. dst holds CX_ID_MAX + 1 bytes. */
static bool chk_id(ex_t *x, const char *name, const char *s, size_t n, char *dst) {
    if (!cx_id_valid(s, n)) {
        const char *p = len_problem(n, CX_ID_MAX);
        if (p) return ex_fail(x, CX_DLQ_BAD_ID, "%s %s (%zu bytes; 1..%d allowed)", name, p, n, CX_ID_MAX);
        return ex_fail(x, CX_DLQ_BAD_ID, "%s has a byte outside [A-Za-z0-9._:@-]", name);
    }
    memcpy(dst, s, n);
    dst[n] = 0;
    return true;
}

/* event_id, title_id, survey_id, campaign_code: cx_token_valid. */
static bool chk_token(ex_t *x, const char *name, const char *s, size_t n, char *dst) {
    if (!cx_token_valid(s, n)) {
        const char *p = len_problem(n, CX_ID_MAX);
        if (p) return ex_fail(x, CX_DLQ_BAD_ID, "%s %s (%zu bytes; 1..%d allowed)", name, p, n, CX_ID_MAX);
        return ex_fail(x, CX_DLQ_BAD_ID, "%s has a control character", name);
    }
    memcpy(dst, s, n);
    dst[n] = 0;
    return true;
}

/* genre, device, touchpoint: at most CX_SHORT_MAX bytes, no control characters. */
static bool chk_short(ex_t *x, const char *name, const char *s, size_t n, char *dst) {
    if (n > CX_SHORT_MAX)
        return ex_fail(x, CX_DLQ_OUT_OF_RANGE, "%s is %zu bytes, more than %d", name, n, CX_SHORT_MAX);
    if (!cx_token_valid(s, n))
        return ex_fail(x, CX_DLQ_BAD_ID, "%s %s", name, n == 0 ? "is empty" : "has a control character");
    memcpy(dst, s, n);
    dst[n] = 0;
    return true;
}

#define TRY(e)                   \
    do {                         \
        if (!(e)) return x.code; \
    } while (0)

/* An input event as read, before any check: strings are borrowed slices (into the Avro value, or
 * into the wire bytes for the direct reader). Both readers fill it and validate_event applies every
 * rule, so the JSON path and the wire path cannot drift apart. */
typedef struct raw_str {
    bool has; /* false: the union's null branch (always true for required strings) */
    const char *s;
    size_t n;
} raw_str_t;

typedef struct raw_event {
    raw_str_t event_id, customer_id, campaign_code;
    int64_t ts_ms;
    raw_str_t title_id, genre, device;        /* play (title_id also purchase) */
    int32_t seconds_watched;                  /* play */
    int kind;                                 /* purchase */
    int64_t amount_minor;                     /* purchase */
    raw_str_t currency;                       /* purchase */
    raw_str_t campaign_id;                    /* email_send */
    int group, channel;                       /* email_send */
    raw_str_t survey_id, touchpoint, comment; /* survey */
    int32_t score;                            /* survey */
} raw_event_t;

/* The checks of every input event, in the order that decides which problem a record with several
 * is reported for (the order the fields were first checked in, kept since). */
static cx_dlq_code_t validate_event(cx_record_kind_t kind, const raw_event_t *r, cx_event_t *ev, char *d, size_t dn) {
    ex_t x = {NULL, d, dn, CX_DLQ_NONE};
    memset(ev, 0, sizeof *ev);
    TRY(chk_token(&x, "event_id", r->event_id.s, r->event_id.n, ev->event_id));
    TRY(chk_id(&x, "customer_id", r->customer_id.s, r->customer_id.n, ev->customer_id));
    ev->ts_ms = r->ts_ms;
    if (kind != CX_REC_SURVEY) {
        if (r->campaign_code.has)
            TRY(chk_token(&x, "campaign_code", r->campaign_code.s, r->campaign_code.n, ev->campaign_code));
        ev->has_campaign_code = r->campaign_code.has;
    }
    switch (kind) {
    case CX_REC_PLAY: {
        cx_play_t *p = &ev->u.play;
        ev->type = CX_EV_PLAY;
        TRY(chk_token(&x, "title_id", r->title_id.s, r->title_id.n, p->title_id));
        if ((p->has_genre = r->genre.has)) TRY(chk_short(&x, "genre", r->genre.s, r->genre.n, p->genre));
        p->seconds_watched = r->seconds_watched;
        if (p->seconds_watched < 0)
            return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "seconds_watched %d is negative", (int)p->seconds_watched), x.code;
        if ((p->has_device = r->device.has)) TRY(chk_short(&x, "device", r->device.s, r->device.n, p->device));
        break;
    }
    case CX_REC_PURCHASE: {
        cx_purchase_t *p = &ev->u.purchase;
        ev->type = CX_EV_PURCHASE;
        if ((p->has_title_id = r->title_id.has))
            TRY(chk_token(&x, "title_id", r->title_id.s, r->title_id.n, p->title_id));
        if (r->kind < 0 || r->kind >= CX_PK__COUNT)
            return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "kind: enum index %d outside 0..%d", r->kind, CX_PK__COUNT - 1),
                   x.code;
        p->kind = (cx_purchase_kind_t)r->kind;
        p->amount_minor = r->amount_minor;
        if (p->amount_minor < 0)
            return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "amount_minor %" PRId64 " is negative", p->amount_minor), x.code;
        const char *s = r->currency.s;
        size_t n = r->currency.n;
        bool ok = n == 3;
        for (size_t i = 0; ok && i < 3; i++)
            ok = s[i] >= 'A' && s[i] <= 'Z';
        if (!ok) {
            char shown[16];
            size_t k;
            for (k = 0; k < n && k < sizeof shown - 1; k++)
                shown[k] = (s[k] >= 0x20 && s[k] < 0x7F && s[k] != '"') ? s[k] : '?';
            shown[k] = 0;
            return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "currency \"%s\" is not three upper-case letters", shown), x.code;
        }
        memcpy(p->currency, s, 3);
        p->currency[3] = 0;
        break;
    }
    case CX_REC_EMAIL_SEND: {
        cx_email_send_t *m = &ev->u.email_send;
        ev->type = CX_EV_EMAIL_SEND;
        TRY(chk_id(&x, "campaign_id", r->campaign_id.s, r->campaign_id.n, m->campaign_id));
        if (r->group < 0 || r->group >= CX_GROUP__COUNT)
            return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "group: enum index %d outside 0..%d", r->group,
                           CX_GROUP__COUNT - 1),
                   x.code;
        m->group = (cx_group_t)r->group;
        if (r->channel < 0 || r->channel >= CX_CH__COUNT)
            return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "channel: enum index %d outside 0..%d", r->channel,
                           CX_CH__COUNT - 1),
                   x.code;
        m->channel = (cx_channel_t)r->channel;
        break;
    }
    case CX_REC_SURVEY: {
        cx_survey_t *q = &ev->u.survey;
        ev->type = CX_EV_SURVEY;
        TRY(chk_token(&x, "survey_id", r->survey_id.s, r->survey_id.n, q->survey_id));
        q->score = r->score;
        if (q->score < 0 || q->score > 10)
            return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "score %d outside 0..10", (int)q->score), x.code;
        TRY(chk_short(&x, "touchpoint", r->touchpoint.s, r->touchpoint.n, q->touchpoint));
        if ((q->has_comment = r->comment.has)) q->comment = r->comment.s, q->comment_len = r->comment.n;
        break;
    }
    default: return ex_fail(&x, CX_DLQ_UNKNOWN_SCHEMA, "record kind %d is not an input event", (int)kind), x.code;
    }
    return CX_DLQ_NONE;
}

static bool ex_rstr(ex_t *x, const char *name, raw_str_t *r) {
    r->has = true;
    return ex_str(x, name, &r->s, &r->n);
}
static bool ex_rnstr(ex_t *x, const char *name, raw_str_t *r) {
    return ex_nstr(x, name, &r->has, &r->s, &r->n);
}

/* The JSON path: the generic Avro value (filled from the line, schema defaults applied) -> raw. */
static cx_dlq_code_t extract_event(cx_record_kind_t kind, avro_value_t *v, cx_event_t *ev, char *d, size_t dn) {
    ex_t x = {v, d, dn, CX_DLQ_NONE};
    raw_event_t r;
    memset(&r, 0, sizeof r);
    TRY(ex_rstr(&x, "event_id", &r.event_id) && ex_rstr(&x, "customer_id", &r.customer_id));
    TRY(ex_long(&x, "ts", &r.ts_ms));
    if (kind != CX_REC_SURVEY) TRY(ex_rnstr(&x, "campaign_code", &r.campaign_code));
    switch (kind) {
    case CX_REC_PLAY:
        TRY(ex_rstr(&x, "title_id", &r.title_id) && ex_rnstr(&x, "genre", &r.genre));
        TRY(ex_int(&x, "seconds_watched", &r.seconds_watched) && ex_rnstr(&x, "device", &r.device));
        break;
    case CX_REC_PURCHASE:
        TRY(ex_rnstr(&x, "title_id", &r.title_id) && ex_enum(&x, "kind", CX_PK__COUNT, &r.kind));
        TRY(ex_long(&x, "amount_minor", &r.amount_minor) && ex_rstr(&x, "currency", &r.currency));
        break;
    case CX_REC_EMAIL_SEND:
        TRY(ex_rstr(&x, "campaign_id", &r.campaign_id) && ex_enum(&x, "group", CX_GROUP__COUNT, &r.group));
        TRY(ex_enum(&x, "channel", CX_CH__COUNT, &r.channel));
        break;
    case CX_REC_SURVEY:
        TRY(ex_rstr(&x, "survey_id", &r.survey_id) && ex_int(&x, "score", &r.score));
        TRY(ex_rstr(&x, "touchpoint", &r.touchpoint) && ex_rnstr(&x, "comment", &r.comment));
        break;
    default: break; /* validate_event reports it */
    }
    return validate_event(kind, &r, ev, d, dn);
}

static cx_dlq_code_t extract_campaign(avro_value_t *v, cx_campaign_t *out, char *d, size_t dn) {
    ex_t x = {v, d, dn, CX_DLQ_NONE};
    const char *s = NULL;
    size_t n = 0; /* set by ex_str; -O3 cannot see that through TRY */
    int e;
    cx_campaign_clear(out);
    TRY(ex_str(&x, "campaign_id", &s, &n) && chk_id(&x, "campaign_id", s, n, out->campaign_id));
    TRY(ex_str(&x, "name", &s, &n));
    if (!(out->name = strndup(s, n))) return ex_fail(&x, CX_DLQ_DECODE_ERROR, "out of memory"), x.code;
    TRY(ex_enum(&x, "type", CX_CT__COUNT, &e));
    out->type = (cx_campaign_type_t)e;
    TRY(ex_long(&x, "start_ts", &out->start_ts_ms));
    TRY(ex_long(&x, "end_ts", &out->end_ts_ms));
    if (out->end_ts_ms < out->start_ts_ms)
        return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "end_ts %" PRId64 " is before start_ts %" PRId64, out->end_ts_ms,
                       out->start_ts_ms),
               cx_campaign_clear(out), x.code;
    TRY(ex_int(&x, "observation_days", &out->observation_days));
    if (out->observation_days < 0 || out->observation_days > 3650)
        return ex_fail(&x, CX_DLQ_OUT_OF_RANGE, "observation_days %d outside 0..3650", (int)out->observation_days),
               cx_campaign_clear(out), x.code;
    avro_value_t arr;
    TRY(ex_field(&x, "promoted_title_ids", &arr));
    size_t count = 0;
    avro_value_get_size(&arr, &count);
    if (count && !(out->promoted_title_ids = calloc(count, sizeof(char *))))
        return ex_fail(&x, CX_DLQ_DECODE_ERROR, "out of memory"), cx_campaign_clear(out), x.code;
    for (size_t i = 0; i < count; i++) {
        avro_value_t el;
        char name[48], tmp[CX_ID_MAX + 1];
        snprintf(name, sizeof name, "promoted_title_ids[%zu]", i);
        avro_value_get_by_index(&arr, i, &el, NULL);
        if (!ex_str_of(&x, name, &el, &s, &n) || !chk_token(&x, name, s, n, tmp)) {
            cx_campaign_clear(out);
            return x.code;
        }
        if (!(out->promoted_title_ids[i] = strdup(tmp))) {
            cx_campaign_clear(out);
            return ex_fail(&x, CX_DLQ_DECODE_ERROR, "out of memory"), x.code;
        }
        out->n_promoted = i + 1;
    }
    bool has;
    if (!ex_nstr(&x, "campaign_code", &has, &s, &n) ||
        (has && !chk_token(&x, "campaign_code", s, n, out->campaign_code))) {
        cx_campaign_clear(out);
        return x.code;
    }
    out->has_campaign_code = has;
    return CX_DLQ_NONE;
}

/* ---- direct Avro binary -> cx_event_t (the four input kinds) ------------------------------ */

/* The input events are read field by field in .avsc order straight from the wire bytes into a
 * raw_event_t (no generic value), with bin_read's bounds checks and messages; validate_event then
 * applies the rules. Every field read names itself and its type, so cx_codec_new can replay a
 * record through the reader and compare the fields read with the schema (see fieldlog_t). */

enum {
    FT_STRING = 1,
    FT_LONG,
    FT_INT,
    FT_DOUBLE,
    FT_BOOL,
    FT_ENUM,
    FT_ARRAY,
    FT_UNSUPPORTED,
    FT_NULLABLE = 0x80 /* ["null", T] */
};

typedef struct fieldlog_entry {
    char name[64];
    int type;
    const char *enum_name; /* FT_ENUM */
    int n_symbols;
} fieldlog_entry_t;

/* The fields a direct encoder wrote or a direct reader read, in order (self-check only). Arrays:
 * the field itself, then its items as "name[]" (primitive items) or "name[].field" (records). */
typedef struct fieldlog {
    int n;
    bool overflow;
    const char *array; /* inside an array's items: its field name */
    fieldlog_entry_t f[64];
} fieldlog_t;

static void flog_add(fieldlog_t *l, const char *name, int type, const char *enum_name, int n_symbols) {
    if (l->n >= (int)(sizeof l->f / sizeof l->f[0])) {
        l->overflow = true;
        return;
    }
    fieldlog_entry_t *e = &l->f[l->n++];
    if (l->array)
        snprintf(e->name, sizeof e->name, "%s[]%s%s", l->array, name[0] ? "." : "", name);
    else
        snprintf(e->name, sizeof e->name, "%s", name);
    e->type = type;
    e->enum_name = enum_name;
    e->n_symbols = n_symbols;
}

#define FLOG(log, ...)                                                        \
    do {                                                                      \
        if (__builtin_expect((log) != NULL, 0)) flog_add((log), __VA_ARGS__); \
    } while (0)

typedef struct drd {
    rd_t r;
    char *d;
    size_t dn;
    cx_dlq_code_t code;
    fieldlog_t *log;
} drd_t;

static bool d_trunc(drd_t *x, const char *field) {
    x->code = truncated(field, x->d, x->dn);
    return false;
}

/* ["null", T] branch index: *has = branch 1. */
static bool d_branch(drd_t *x, const char *name, bool *has) {
    int64_t l;
    if (!rd_long(&x->r, &l) || l < 0 || l > 1) return d_trunc(x, name);
    *has = l == 1;
    return true;
}

static bool d_strv(drd_t *x, const char *name, raw_str_t *out) {
    int64_t l;
    if (!rd_long(&x->r, &l) || l < 0 || l > x->r.end - x->r.p) return d_trunc(x, name);
    out->s = (const char *)x->r.p;
    out->n = (size_t)l;
    x->r.p += l;
    return true;
}

static bool d_str(drd_t *x, const char *name, raw_str_t *out) {
    FLOG(x->log, name, FT_STRING, NULL, 0);
    out->has = true;
    return d_strv(x, name, out);
}

static bool d_nstr(drd_t *x, const char *name, raw_str_t *out) {
    FLOG(x->log, name, FT_NULLABLE | FT_STRING, NULL, 0);
    if (!d_branch(x, name, &out->has)) return false;
    return !out->has || d_strv(x, name, out);
}

static bool d_long(drd_t *x, const char *name, int64_t *v) {
    FLOG(x->log, name, FT_LONG, NULL, 0);
    return rd_long(&x->r, v) || d_trunc(x, name);
}

static bool d_int(drd_t *x, const char *name, int32_t *v) {
    FLOG(x->log, name, FT_INT, NULL, 0);
    int64_t l;
    if (!rd_long(&x->r, &l) || l < INT32_MIN || l > INT32_MAX) return d_trunc(x, name);
    *v = (int32_t)l;
    return true;
}

static bool d_enum(drd_t *x, const char *name, const char *enum_name, int n_symbols, int *v) {
    FLOG(x->log, name, FT_ENUM, enum_name, n_symbols);
    int64_t l;
    if (!rd_long(&x->r, &l)) return d_trunc(x, name);
    if (l < 0 || l >= n_symbols) {
        cx_seterr(x->d, x->dn, "%s: enum index %" PRId64 " outside 0..%d", name, l, n_symbols - 1);
        x->code = CX_DLQ_OUT_OF_RANGE;
        return false;
    }
    *v = (int)l;
    return true;
}

/* The record body of `kind` (after the 5-byte header) -> raw, every field in .avsc order. */
static bool read_event_fields(drd_t *x, cx_record_kind_t kind, raw_event_t *r) {
    if (!d_str(x, "event_id", &r->event_id) || !d_str(x, "customer_id", &r->customer_id) || !d_long(x, "ts", &r->ts_ms))
        return false;
    switch (kind) {
    case CX_REC_PLAY:
        return d_str(x, "title_id", &r->title_id) && d_nstr(x, "genre", &r->genre) &&
               d_int(x, "seconds_watched", &r->seconds_watched) && d_nstr(x, "device", &r->device) &&
               d_nstr(x, "campaign_code", &r->campaign_code);
    case CX_REC_PURCHASE:
        return d_nstr(x, "title_id", &r->title_id) && d_enum(x, "kind", "PurchaseKind", CX_PK__COUNT, &r->kind) &&
               d_long(x, "amount_minor", &r->amount_minor) && d_str(x, "currency", &r->currency) &&
               d_nstr(x, "campaign_code", &r->campaign_code);
    case CX_REC_EMAIL_SEND:
        return d_str(x, "campaign_id", &r->campaign_id) && d_enum(x, "group", "Group", CX_GROUP__COUNT, &r->group) &&
               d_nstr(x, "campaign_code", &r->campaign_code) &&
               d_enum(x, "channel", "Channel", CX_CH__COUNT, &r->channel);
    case CX_REC_SURVEY:
        return d_str(x, "survey_id", &r->survey_id) && d_int(x, "score", &r->score) &&
               d_str(x, "touchpoint", &r->touchpoint) && d_nstr(x, "comment", &r->comment);
    default: return d_trunc(x, NULL);
    }
}

/* Frame check (BAD_FRAMING, UNKNOWN_SCHEMA); on success *body is the Avro record's first byte. */
static cx_dlq_code_t check_frame(cx_codec_t *c, int k, const void *buf, size_t len, char *d, size_t dn) {
    const uint8_t *p = buf;
    if (len < 5 || !p) {
        cx_seterr(d, dn, "value of %zu bytes is shorter than the 5-byte wire header", len);
        return CX_DLQ_BAD_FRAMING;
    }
    if (p[0] != 0) {
        cx_seterr(d, dn, "magic byte 0x%02x, expected 0x00", p[0]);
        return CX_DLQ_BAD_FRAMING;
    }
    int32_t id = (int32_t)((uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4]);
    if (id != c->s[k].id) {
        for (int i = 0; i < N_KINDS; i++)
            if (c->s[i].id == id) {
                cx_seterr(d, dn, "schema id %d is %s, not %s of this topic", (int)id, kind_infos[i].record,
                          kind_infos[k].record);
                return CX_DLQ_UNKNOWN_SCHEMA;
            }
        cx_seterr(d, dn, "unknown schema id %d (expected %d, %s)", (int)id, (int)c->s[k].id, kind_infos[k].record);
        return CX_DLQ_UNKNOWN_SCHEMA;
    }
    return CX_DLQ_NONE;
}

/* Wire bytes (header already checked) -> raw; trailing bytes are DECODE_ERROR. */
static cx_dlq_code_t read_event_wire(cx_record_kind_t kind, const uint8_t *p, size_t len, raw_event_t *r,
                                     fieldlog_t *log, char *d, size_t dn) {
    drd_t x = {{p + 5, p + len}, d, dn, CX_DLQ_NONE, log};
    memset(r, 0, sizeof *r);
    if (!read_event_fields(&x, kind, r)) return x.code;
    if (x.r.p != x.r.end) {
        cx_seterr(d, dn, "%zu trailing bytes after the %s record", (size_t)(x.r.end - x.r.p),
                  kind_infos[kind_index(kind)].record);
        return CX_DLQ_DECODE_ERROR;
    }
    return CX_DLQ_NONE;
}

/* ---- decode entry points ----------------------------------------------------------------- */

/* Frame check and Avro decode of `buf` into the value of `expected`. */
static cx_dlq_code_t decode_wire(cx_codec_t *c, cx_record_kind_t expected, const void *buf, size_t len,
                                 avro_value_t **value, char *d, size_t dn) {
    const uint8_t *p = buf;
    int k = kind_index(expected);
    if (!c || k < 0) {
        cx_seterr(d, dn, "no codec or unknown record kind %d", (int)expected);
        return CX_DLQ_UNKNOWN_SCHEMA;
    }
    cx_dlq_code_t frame = check_frame(c, k, buf, len, d, dn);
    if (frame != CX_DLQ_NONE) return frame;
    rd_t r = {p + 5, p + len};
    avro_value_t *v = &c->s[k].value;
    cx_dlq_code_t code = bin_read(c, &r, v, NULL, d, dn);
    if (code != CX_DLQ_NONE) return code;
    if (r.p != r.end) {
        cx_seterr(d, dn, "%zu trailing bytes after the %s record", (size_t)(r.end - r.p), kind_infos[k].record);
        return CX_DLQ_DECODE_ERROR;
    }
    *value = v;
    return CX_DLQ_NONE;
}

cx_dlq_code_t cx_codec_decode_event(cx_codec_t *c, cx_record_kind_t expected, const void *buf, size_t len,
                                    cx_event_t *out, char *detail, size_t detail_size) {
    if (expected < CX_REC_PLAY || expected > CX_REC_SURVEY) {
        cx_seterr(detail, detail_size, "record kind %d is not an input event", (int)expected);
        return CX_DLQ_UNKNOWN_SCHEMA;
    }
    if (!c) {
        cx_seterr(detail, detail_size, "no codec or unknown record kind %d", (int)expected);
        return CX_DLQ_UNKNOWN_SCHEMA;
    }
    raw_event_t r;
    cx_dlq_code_t code = check_frame(c, kind_index(expected), buf, len, detail, detail_size);
    if (code == CX_DLQ_NONE) code = read_event_wire(expected, buf, len, &r, NULL, detail, detail_size);
    if (code != CX_DLQ_NONE) return code;
    if (r.comment.has) { /* borrowed by the event: copied, the caller may free the message bytes */
        c->comment.len = 0;
        if (cx_buf_append(&c->comment, r.comment.s, r.comment.n) != CX_OK) {
            cx_seterr(detail, detail_size, "out of memory");
            return CX_DLQ_DECODE_ERROR;
        }
        r.comment.s = (const char *)c->comment.data;
    }
    return validate_event(expected, &r, out, detail, detail_size);
}

cx_dlq_code_t cx_codec_decode_campaign(cx_codec_t *c, const void *buf, size_t len, cx_campaign_t *out, char *detail,
                                       size_t detail_size) {
    avro_value_t *v;
    cx_dlq_code_t code = decode_wire(c, CX_REC_CAMPAIGN, buf, len, &v, detail, detail_size);
    return code != CX_DLQ_NONE ? code : extract_campaign(v, out, detail, detail_size);
}

cx_dlq_code_t cx_codec_decode_json(cx_codec_t *c, const char *line, size_t len, cx_event_t *ev, cx_campaign_t *camp,
                                   bool *is_campaign, char *detail, size_t detail_size) {
    json_error_t jerr;
    cx_dlq_code_t code = CX_DLQ_DECODE_ERROR;
    if (is_campaign) *is_campaign = false;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        cx_seterr(detail, detail_size, "not JSON: %s at column %d", jerr.text, jerr.column);
        return CX_DLQ_DECODE_ERROR;
    }
    if (!json_is_object(root)) {
        cx_seterr(detail, detail_size, "not a JSON object");
        goto done;
    }
    const char *type = json_string_value(json_object_get(root, "event_type"));
    int t = type ? cx_event_type_from_name(type) : -1;
    if (t < 0) {
        cx_seterr(detail, detail_size, type ? "unknown event_type \"%.32s\"" : "no event_type%s", type ? type : "");
        goto done;
    }
    cx_record_kind_t kind = cx_codec_kind_of_event((cx_event_type_t)t);
    if (!c || (kind == CX_REC_CAMPAIGN ? !camp : !ev)) {
        cx_seterr(detail, detail_size, "no codec or no place for a %s record", type);
        goto done;
    }
    kind_slot_t *s = &c->s[kind_index(kind)];
    jctx_t x = {c, s->avsc, detail, detail_size};
    code = json_fill_record(&x, root, &s->value);
    if (code != CX_DLQ_NONE) goto done;
    if (kind == CX_REC_CAMPAIGN) {
        if (is_campaign) *is_campaign = true;
        code = extract_campaign(&s->value, camp, detail, detail_size);
    } else {
        code = extract_event(kind, &s->value, ev, detail, detail_size);
    }
done:
    json_decref(root);
    return code;
}

cx_dlq_code_t cx_codec_check_event(const cx_event_t *ev, const cx_check_opts_t *o, char *detail, size_t detail_size) {
    if (ev->ts_ms < o->min_ts_ms) {
        cx_seterr(detail, detail_size, "ts %" PRId64 " is before input.min_ts %" PRId64, ev->ts_ms, o->min_ts_ms);
        return CX_DLQ_BAD_TIMESTAMP;
    }
    if (o->now_ms > 0 && ev->ts_ms > o->now_ms + o->max_future_ms) {
        cx_seterr(detail, detail_size, "ts %" PRId64 " is more than %" PRId64 " ms past the clock %" PRId64, ev->ts_ms,
                  o->max_future_ms, o->now_ms);
        return CX_DLQ_BAD_TIMESTAMP;
    }
    if (ev->type == CX_EV_PURCHASE && o->n_currencies > 0) {
        for (size_t i = 0; i < o->n_currencies; i++)
            if (strcmp(o->currencies[i], ev->u.purchase.currency) == 0) return CX_DLQ_NONE;
        cx_seterr(detail, detail_size, "currency %s is not in currency.allowed", ev->u.purchase.currency);
        return CX_DLQ_UNKNOWN_CURRENCY;
    }
    return CX_DLQ_NONE;
}

/* ---- struct -> value --------------------------------------------------------------------- */

typedef struct put {
    cx_codec_t *c;
    avro_value_t *rec;
    int rc;
} put_t;

static bool put_field(put_t *p, const char *name, avro_value_t *f) {
    if (p->rc) return false;
    if (avro_value_get_by_name(p->rec, name, f, NULL) != 0) {
        cx_log(CX_LOG_ERROR, "codec", "msg=\"schema has no field\" field=%s", name);
        p->rc = EINVAL;
        return false;
    }
    return true;
}

/* The value to store into: the field itself, or its union's null (has = false) or value branch. */
static bool put_slot(put_t *p, const char *name, bool has, avro_value_t *out) {
    avro_value_t f;
    if (!put_field(p, name, &f)) return false;
    if (avro_value_get_type(&f) != AVRO_UNION) {
        *out = f;
        return true;
    }
    if ((p->rc = avro_value_set_branch(&f, has ? 1 : 0, out)) != 0) return false;
    if (!has) {
        p->rc = avro_value_set_null(out);
        return false;
    }
    return true;
}

static void put_strn(put_t *p, const char *name, bool has, const char *s, size_t n) {
    avro_value_t v;
    if (put_slot(p, name, has && s, &v)) p->rc = set_string(p->c, &v, s, n);
}
static void put_str(put_t *p, const char *name, bool has, const char *s) {
    put_strn(p, name, has, s, s ? strlen(s) : 0);
}
static void put_int(put_t *p, const char *name, bool has, int32_t i) {
    avro_value_t v;
    if (put_slot(p, name, has, &v)) p->rc = avro_value_set_int(&v, i);
}
static void put_long(put_t *p, const char *name, bool has, int64_t l) {
    avro_value_t v;
    if (put_slot(p, name, has, &v)) p->rc = avro_value_set_long(&v, l);
}
static void put_double(put_t *p, const char *name, bool has, double d) {
    avro_value_t v;
    if (put_slot(p, name, has, &v)) p->rc = avro_value_set_double(&v, d);
}
static void put_bool(put_t *p, const char *name, bool b) {
    avro_value_t v;
    if (put_slot(p, name, true, &v)) p->rc = avro_value_set_boolean(&v, b);
}
static void put_enum(put_t *p, const char *name, bool has, int idx, int n_symbols) {
    avro_value_t v;
    if (idx < 0 || idx >= n_symbols) {
        if (!p->rc) p->rc = EINVAL;
        return;
    }
    if (put_slot(p, name, has, &v)) p->rc = avro_value_set_enum(&v, idx);
}

static cx_err_t fill_event(put_t *p, cx_record_kind_t kind, const cx_event_t *ev) {
    if (cx_codec_kind_of_event(ev->type) != kind) return CX_ERR_INVALID;
    put_str(p, "event_id", true, ev->event_id);
    put_str(p, "customer_id", true, ev->customer_id);
    put_long(p, "ts", true, ev->ts_ms);
    switch (ev->type) {
    case CX_EV_PLAY: {
        const cx_play_t *pl = &ev->u.play;
        put_str(p, "title_id", true, pl->title_id);
        put_str(p, "genre", pl->has_genre, pl->genre);
        put_int(p, "seconds_watched", true, pl->seconds_watched);
        put_str(p, "device", pl->has_device, pl->device);
        put_str(p, "campaign_code", ev->has_campaign_code, ev->campaign_code);
        break;
    }
    case CX_EV_PURCHASE: {
        const cx_purchase_t *pu = &ev->u.purchase;
        put_str(p, "title_id", pu->has_title_id, pu->title_id);
        put_enum(p, "kind", true, (int)pu->kind, CX_PK__COUNT);
        put_long(p, "amount_minor", true, pu->amount_minor);
        put_str(p, "currency", true, pu->currency);
        put_str(p, "campaign_code", ev->has_campaign_code, ev->campaign_code);
        break;
    }
    case CX_EV_EMAIL_SEND: {
        const cx_email_send_t *m = &ev->u.email_send;
        put_str(p, "campaign_id", true, m->campaign_id);
        put_enum(p, "group", true, (int)m->group, CX_GROUP__COUNT);
        put_str(p, "campaign_code", ev->has_campaign_code, ev->campaign_code);
        put_enum(p, "channel", true, (int)m->channel, CX_CH__COUNT);
        break;
    }
    case CX_EV_SURVEY: {
        const cx_survey_t *q = &ev->u.survey;
        put_str(p, "survey_id", true, q->survey_id);
        put_int(p, "score", true, q->score);
        put_str(p, "touchpoint", true, q->touchpoint);
        put_strn(p, "comment", q->has_comment, q->comment, q->comment_len);
        break;
    }
    default: return CX_ERR_INVALID;
    }
    return CX_OK;
}

static void fill_campaign(put_t *p, const cx_campaign_t *cp) {
    put_str(p, "campaign_id", true, cp->campaign_id);
    put_str(p, "name", true, cp->name ? cp->name : "");
    put_enum(p, "type", true, (int)cp->type, CX_CT__COUNT);
    put_long(p, "start_ts", true, cp->start_ts_ms);
    put_long(p, "end_ts", true, cp->end_ts_ms);
    put_int(p, "observation_days", true, cp->observation_days);
    avro_value_t arr;
    if (put_field(p, "promoted_title_ids", &arr)) {
        avro_value_reset(&arr);
        for (size_t i = 0; i < cp->n_promoted && !p->rc; i++) {
            avro_value_t el;
            if ((p->rc = avro_value_append(&arr, &el, NULL)) == 0)
                p->rc = set_string(p->c, &el, cp->promoted_title_ids[i], strlen(cp->promoted_title_ids[i]));
        }
    }
    put_str(p, "campaign_code", cp->has_campaign_code, cp->campaign_code);
}

static void fill_segment_change(put_t *p, const cx_segment_change_t *s) {
    put_str(p, "customer_id", true, s->customer_id);
    put_long(p, "ts", true, s->ts_ms);
    put_str(p, "previous_segment", s->previous_segment != NULL, s->previous_segment);
    put_str(p, "segment", true, s->segment ? s->segment : "");
    put_int(p, "r_score", true, s->r_score);
    put_int(p, "f_score", true, s->f_score);
    put_int(p, "m_score", true, s->m_score);
    put_int(p, "recency_days", true, s->recency_days);
    put_long(p, "frequency", true, s->frequency);
    put_long(p, "monetary_minor", true, s->monetary_minor);
    put_str(p, "cause", true, s->cause);
    put_double(p, "p_alive", s->has_p_alive, s->p_alive);
    put_long(p, "clv_minor", s->has_clv_minor, s->clv_minor);
}

static void fill_trigger(put_t *p, const cx_trigger_t *t) {
    put_str(p, "customer_id", true, t->customer_id);
    put_long(p, "ts", true, t->ts_ms);
    put_str(p, "trigger_id", true, t->trigger_id);
    put_enum(p, "kind", true, (int)t->kind, CX_TRIG__COUNT);
    put_int(p, "days_since_last_play", t->has_days_since_last_play, t->days_since_last_play);
    put_double(p, "usual_gap_days", t->has_usual_gap_days, t->usual_gap_days);
    put_double(p, "p_alive", t->has_p_alive, t->p_alive);
    put_str(p, "segment", true, t->segment ? t->segment : "");
    put_enum(p, "suggested_action", true, (int)t->suggested_action, CX_ACT__COUNT);
    put_str(p, "top_genre", t->has_top_genre, t->top_genre);
    put_bool(p, "eligible", t->eligible);
    put_str(p, "last_contact_campaign_id", t->has_last_contact_campaign_id, t->last_contact_campaign_id);
}

static void fill_response(put_t *p, const cx_response_t *r) {
    put_str(p, "customer_id", true, r->customer_id);
    put_long(p, "ts", true, r->ts_ms);
    put_str(p, "response_id", true, r->response_id);
    put_str(p, "campaign_id", true, r->campaign_id);
    put_str(p, "send_event_id", true, r->send_event_id);
    put_str(p, "response_event_id", true, r->response_event_id);
    put_enum(p, "response_type", true, (int)r->response_type, 2);
    put_enum(p, "action", true, (int)r->action, 2);
    put_long(p, "amount_minor", true, r->amount_minor);
    put_enum(p, "group", true, (int)r->group, CX_GROUP__COUNT);
    put_long(p, "latency_ms", true, r->latency_ms);
}

static void fill_kpi(put_t *p, const cx_kpi_t *k) {
    put_str(p, "campaign_id", true, k->campaign_id);
    put_long(p, "ts", true, k->ts_ms);
    put_long(p, "as_of_ts", true, k->as_of_ts_ms);
    put_long(p, "sent_test", true, k->sent_test);
    put_long(p, "sent_control", true, k->sent_control);
    put_long(p, "responders_test_any", true, k->responders_test_any);
    put_long(p, "responders_test_hard", true, k->responders_test_hard);
    put_long(p, "responders_control_any", true, k->responders_control_any);
    put_long(p, "responders_control_hard", true, k->responders_control_hard);
    put_long(p, "retrievals", true, k->retrievals);
    put_long(p, "purchases", true, k->purchases);
    put_long(p, "turnover_minor", true, k->turnover_minor);
    put_long(p, "revenue_per_responder_minor", true, k->revenue_per_responder_minor);
    put_double(p, "response_rate_test", true, k->response_rate_test);
    put_double(p, "response_rate_control", true, k->response_rate_control);
    put_double(p, "lift", k->has_lift, k->lift);
    put_double(p, "lift_p_value", k->has_lift_p_value, k->lift_p_value);
    put_bool(p, "closed", k->closed);
}

static cx_err_t fill_enriched(put_t *p, const cx_enriched_t *en) {
    const cx_event_t *ev = en->event;
    if (!ev || ev->type >= CX_EV_CAMPAIGN) return CX_ERR_INVALID;
    avro_value_t et;
    if (put_field(p, "event_type", &et)) {
        int idx = avro_schema_enum_get_by_name(avro_value_get_schema(&et), cx_event_type_name(ev->type));
        p->rc = idx < 0 ? EINVAL : avro_value_set_enum(&et, idx);
    }
    put_str(p, "event_id", true, ev->event_id);
    put_str(p, "customer_id", true, ev->customer_id);
    put_long(p, "ts", true, ev->ts_ms);
    bool play = ev->type == CX_EV_PLAY, pur = ev->type == CX_EV_PURCHASE, mail = ev->type == CX_EV_EMAIL_SEND,
         sur = ev->type == CX_EV_SURVEY;
    const cx_play_t *pl = &ev->u.play;
    const cx_purchase_t *pu = &ev->u.purchase;
    const cx_email_send_t *m = &ev->u.email_send;
    const cx_survey_t *q = &ev->u.survey;
    put_str(p, "title_id", play || (pur && pu->has_title_id), play ? pl->title_id : pu->title_id);
    put_str(p, "genre", play && pl->has_genre, pl->genre);
    put_int(p, "seconds_watched", play, pl->seconds_watched);
    put_str(p, "device", play && pl->has_device, pl->device);
    put_str(p, "campaign_code", !sur && ev->has_campaign_code, ev->campaign_code);
    put_enum(p, "kind", pur, pur ? (int)pu->kind : 0, CX_PK__COUNT);
    put_long(p, "amount_minor", pur, pu->amount_minor);
    put_str(p, "currency", pur, pu->currency);
    put_str(p, "campaign_id", mail, m->campaign_id);
    put_enum(p, "group", mail, mail ? (int)m->group : 0, CX_GROUP__COUNT);
    put_enum(p, "channel", mail, mail ? (int)m->channel : 0, CX_CH__COUNT);
    put_str(p, "survey_id", sur, q->survey_id);
    put_int(p, "score", sur, q->score);
    put_str(p, "touchpoint", sur, q->touchpoint);
    put_strn(p, "comment", sur && q->has_comment, q->comment, q->comment_len);
    put_str(p, "segment", en->has_segment, en->segment);
    put_int(p, "r_score", en->has_segment, en->r_score);
    put_int(p, "f_score", en->has_segment, en->f_score);
    put_int(p, "m_score", en->has_segment, en->m_score);
    put_int(p, "nps_last", en->has_nps_last, en->nps_last);
    put_double(p, "p_alive", en->has_p_alive, en->p_alive);
    put_str(p, "acquisition_campaign_id", en->has_acquisition_campaign_id, en->acquisition_campaign_id);
    put_bool(p, "newsletter_recipient", en->newsletter_recipient);
    put_str(p, "response_campaign_id", en->has_response_campaign_id, en->response_campaign_id);
    return CX_OK;
}

static void fill_profile(put_t *p, const cx_profile_out_t *pr) {
    bool tx = pr->has_tx;
    put_str(p, "customer_id", true, pr->customer_id);
    put_long(p, "first_transaction_ts", tx, pr->first_transaction_ts);
    put_long(p, "last_transaction_ts", tx, pr->last_transaction_ts);
    put_long(p, "last_play_ts", pr->has_last_play_ts, pr->last_play_ts);
    put_int(p, "recency_days", tx, pr->recency_days);
    put_long(p, "frequency", true, pr->frequency);
    put_long(p, "monetary_minor", true, pr->monetary_minor);
    put_int(p, "r_score", tx, pr->r_score);
    put_int(p, "f_score", tx, pr->f_score);
    put_int(p, "m_score", tx, pr->m_score);
    put_str(p, "segment", tx && pr->segment, pr->segment);
    put_long(p, "purchases_total", true, pr->purchases_total);
    put_long(p, "revenue_total_minor", true, pr->revenue_total_minor);
    put_long(p, "plays_total", true, pr->plays_total);
    put_int(p, "nps_last", pr->has_nps_last, pr->nps_last);
    put_long(p, "nps_count", true, pr->nps_count);
    put_long(p, "bgnbd_x", true, pr->bgnbd_x);
    put_long(p, "repeat_revenue_minor", true, pr->repeat_revenue_minor);
    put_long(p, "bgnbd_t_x_days", true, pr->bgnbd_t_x_days);
    put_long(p, "bgnbd_T_days", true, pr->bgnbd_T_days);
    put_double(p, "p_alive", pr->has_p_alive, pr->p_alive);
    put_double(p, "expected_transactions_90d", true, pr->expected_transactions_90d);
    put_long(p, "clv_minor", true, pr->clv_minor);
    put_str(p, "acquisition_campaign_id", pr->has_acquisition_campaign_id, pr->acquisition_campaign_id);
    put_bool(p, "newsletter_recipient", pr->newsletter_recipient);
    avro_value_t arr;
    if (!put_field(p, "contacts", &arr)) return;
    avro_value_reset(&arr);
    size_t n = pr->n_contacts < CX_PROFILE_CONTACTS_OUT ? pr->n_contacts : CX_PROFILE_CONTACTS_OUT;
    for (size_t i = 0; i < n && !p->rc; i++) {
        const cx_contact_t *ct = &pr->contacts[i];
        avro_value_t el;
        if ((p->rc = avro_value_append(&arr, &el, NULL)) != 0) return;
        put_t sub = {p->c, &el, 0};
        put_str(&sub, "campaign_id", true, ct->campaign_id);
        put_enum(&sub, "campaign_type", true, (int)ct->campaign_type, CX_CT__COUNT);
        put_enum(&sub, "channel", true, (int)ct->channel, CX_CH__COUNT);
        put_enum(&sub, "group", true, (int)ct->group, CX_GROUP__COUNT);
        put_long(&sub, "ts", true, ct->ts_ms);
        p->rc = sub.rc;
    }
}

/* ---- direct Avro binary: C struct -> wire bytes ------------------------------------------- */

/* Every output record (and the input kinds, for the generator) is written field by field in .avsc
 * order straight into the caller's buffer: zigzag varints for int/long, enum indexes and union
 * branches, length-prefixed strings, 8 little-endian bytes for doubles, one byte for booleans,
 * arrays as one block (count, items, 0). No generic value, no schema lookups. Each writer names
 * its field and type: cx_codec_new runs every encoder once with a fieldlog_t and refuses to start
 * if the fields written differ from the .avsc (direct_self_check). */

typedef struct wr {
    cx_buf_t *b;
    cx_err_t err;
    fieldlog_t *log; /* self-check only; NULL on the hot path */
} wr_t;

/* Room for n more bytes plus the NUL that cx_codec_encode leaves after the record. */
static inline bool w_room(wr_t *w, size_t n) {
    if (__builtin_expect(w->b->cap - w->b->len > n, 1)) return true;
    if (cx_buf_reserve(w->b, n + 1) == CX_OK) return true;
    w->err = CX_ERR_NOMEM;
    return false;
}

static inline void w_varint(wr_t *w, int64_t v) {
    if (!w_room(w, 10)) return;
    uint64_t u = (uint64_t)v << 1 ^ (v < 0 ? ~UINT64_C(0) : 0);
    uint8_t *p = w->b->data + w->b->len, *start = p;
    while (u >= 0x80) {
        *p++ = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    *p++ = (uint8_t)u;
    w->b->len += (size_t)(p - start);
}

static inline void w_strv(wr_t *w, const char *s, size_t n) {
    if (!w_room(w, 10 + n)) return;
    w_varint(w, (int64_t)n);
    if (n) memcpy(w->b->data + w->b->len, s, n);
    w->b->len += n;
}

static inline void w_doublev(wr_t *w, double d) {
    if (!w_room(w, 8)) return;
    uint64_t u;
    memcpy(&u, &d, 8);
    uint8_t *p = w->b->data + w->b->len;
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
    w->b->len += 8;
}

static inline void w_branch(wr_t *w, bool has) {
    if (w_room(w, 1)) w->b->data[w->b->len++] = has ? 2 : 0; /* zigzag(1), zigzag(0) */
}

/* Strings: a NULL required string is written as "" (as the generic path does). */
static inline void w_strn(wr_t *w, const char *name, const char *s, size_t n) {
    FLOG(w->log, name, FT_STRING, NULL, 0);
    w_strv(w, s ? s : "", s ? n : 0);
}
static inline void w_str(wr_t *w, const char *name, const char *s) {
    w_strn(w, name, s, s ? strlen(s) : 0);
}
static inline void w_nstrn(wr_t *w, const char *name, bool has, const char *s, size_t n) {
    FLOG(w->log, name, FT_NULLABLE | FT_STRING, NULL, 0);
    w_branch(w, has && s);
    if (has && s) w_strv(w, s, n);
}
static inline void w_nstr(wr_t *w, const char *name, bool has, const char *s) {
    w_nstrn(w, name, has, s, has && s ? strlen(s) : 0);
}
static inline void w_long(wr_t *w, const char *name, int64_t v) {
    FLOG(w->log, name, FT_LONG, NULL, 0);
    w_varint(w, v);
}
static inline void w_nlong(wr_t *w, const char *name, bool has, int64_t v) {
    FLOG(w->log, name, FT_NULLABLE | FT_LONG, NULL, 0);
    w_branch(w, has);
    if (has) w_varint(w, v);
}
static inline void w_int(wr_t *w, const char *name, int32_t v) {
    FLOG(w->log, name, FT_INT, NULL, 0);
    w_varint(w, v);
}
static inline void w_nint(wr_t *w, const char *name, bool has, int32_t v) {
    FLOG(w->log, name, FT_NULLABLE | FT_INT, NULL, 0);
    w_branch(w, has);
    if (has) w_varint(w, v);
}
static inline void w_double(wr_t *w, const char *name, double d) {
    FLOG(w->log, name, FT_DOUBLE, NULL, 0);
    w_doublev(w, d);
}
static inline void w_ndouble(wr_t *w, const char *name, bool has, double d) {
    FLOG(w->log, name, FT_NULLABLE | FT_DOUBLE, NULL, 0);
    w_branch(w, has);
    if (has) w_doublev(w, d);
}
static inline void w_bool(wr_t *w, const char *name, bool b) {
    FLOG(w->log, name, FT_BOOL, NULL, 0);
    if (w_room(w, 1)) w->b->data[w->b->len++] = b ? 1 : 0;
}
/* An index outside the C enum is CX_ERR_INVALID, as in the generic path (even for a null). */
static inline void w_enum(wr_t *w, const char *name, const char *enum_name, int idx, int n_symbols) {
    FLOG(w->log, name, FT_ENUM, enum_name, n_symbols);
    if (idx < 0 || idx >= n_symbols)
        w->err = CX_ERR_INVALID;
    else
        w_varint(w, idx);
}
static inline void w_nenum(wr_t *w, const char *name, const char *enum_name, bool has, int idx, int n_symbols) {
    FLOG(w->log, name, FT_NULLABLE | FT_ENUM, enum_name, n_symbols);
    if (idx < 0 || idx >= n_symbols) w->err = CX_ERR_INVALID;
    w_branch(w, has);
    if (has) w_varint(w, idx);
}
/* An array is one block: count (if any), the items, then 0. Items log as "name[]" / "name[].f". */
static inline void w_array_begin(wr_t *w, const char *name, size_t count) {
    FLOG(w->log, name, FT_ARRAY, NULL, 0);
    if (count) w_varint(w, (int64_t)count);
    if (w->log) w->log->array = name;
}
static inline void w_array_end(wr_t *w) {
    if (w->log) w->log->array = NULL;
    w_varint(w, 0);
}

static cx_err_t write_event(wr_t *w, cx_record_kind_t kind, const cx_event_t *ev) {
    if (cx_codec_kind_of_event(ev->type) != kind) return CX_ERR_INVALID;
    w_str(w, "event_id", ev->event_id);
    w_str(w, "customer_id", ev->customer_id);
    w_long(w, "ts", ev->ts_ms);
    switch (ev->type) {
    case CX_EV_PLAY: {
        const cx_play_t *pl = &ev->u.play;
        w_str(w, "title_id", pl->title_id);
        w_nstr(w, "genre", pl->has_genre, pl->genre);
        w_int(w, "seconds_watched", pl->seconds_watched);
        w_nstr(w, "device", pl->has_device, pl->device);
        w_nstr(w, "campaign_code", ev->has_campaign_code, ev->campaign_code);
        break;
    }
    case CX_EV_PURCHASE: {
        const cx_purchase_t *pu = &ev->u.purchase;
        w_nstr(w, "title_id", pu->has_title_id, pu->title_id);
        w_enum(w, "kind", "PurchaseKind", (int)pu->kind, CX_PK__COUNT);
        w_long(w, "amount_minor", pu->amount_minor);
        w_str(w, "currency", pu->currency);
        w_nstr(w, "campaign_code", ev->has_campaign_code, ev->campaign_code);
        break;
    }
    case CX_EV_EMAIL_SEND: {
        const cx_email_send_t *m = &ev->u.email_send;
        w_str(w, "campaign_id", m->campaign_id);
        w_enum(w, "group", "Group", (int)m->group, CX_GROUP__COUNT);
        w_nstr(w, "campaign_code", ev->has_campaign_code, ev->campaign_code);
        w_enum(w, "channel", "Channel", (int)m->channel, CX_CH__COUNT);
        break;
    }
    case CX_EV_SURVEY: {
        const cx_survey_t *q = &ev->u.survey;
        w_str(w, "survey_id", q->survey_id);
        w_int(w, "score", q->score);
        w_str(w, "touchpoint", q->touchpoint);
        w_nstrn(w, "comment", q->has_comment, q->comment, q->comment_len);
        break;
    }
    default: return CX_ERR_INVALID;
    }
    return CX_OK;
}

static void write_campaign(wr_t *w, const cx_campaign_t *cp) {
    w_str(w, "campaign_id", cp->campaign_id);
    w_str(w, "name", cp->name);
    w_enum(w, "type", "CampaignType", (int)cp->type, CX_CT__COUNT);
    w_long(w, "start_ts", cp->start_ts_ms);
    w_long(w, "end_ts", cp->end_ts_ms);
    w_int(w, "observation_days", cp->observation_days);
    w_array_begin(w, "promoted_title_ids", cp->n_promoted);
    for (size_t i = 0; i < cp->n_promoted; i++)
        w_str(w, "", cp->promoted_title_ids[i]);
    w_array_end(w);
    w_nstr(w, "campaign_code", cp->has_campaign_code, cp->campaign_code);
}

static void write_segment_change(wr_t *w, const cx_segment_change_t *s) {
    w_str(w, "customer_id", s->customer_id);
    w_long(w, "ts", s->ts_ms);
    w_nstr(w, "previous_segment", s->previous_segment != NULL, s->previous_segment);
    w_str(w, "segment", s->segment);
    w_int(w, "r_score", s->r_score);
    w_int(w, "f_score", s->f_score);
    w_int(w, "m_score", s->m_score);
    w_int(w, "recency_days", s->recency_days);
    w_long(w, "frequency", s->frequency);
    w_long(w, "monetary_minor", s->monetary_minor);
    w_str(w, "cause", s->cause);
    w_ndouble(w, "p_alive", s->has_p_alive, s->p_alive);
    w_nlong(w, "clv_minor", s->has_clv_minor, s->clv_minor);
}

static void write_trigger(wr_t *w, const cx_trigger_t *t) {
    w_str(w, "customer_id", t->customer_id);
    w_long(w, "ts", t->ts_ms);
    w_str(w, "trigger_id", t->trigger_id);
    w_enum(w, "kind", "TriggerKind", (int)t->kind, CX_TRIG__COUNT);
    w_nint(w, "days_since_last_play", t->has_days_since_last_play, t->days_since_last_play);
    w_ndouble(w, "usual_gap_days", t->has_usual_gap_days, t->usual_gap_days);
    w_ndouble(w, "p_alive", t->has_p_alive, t->p_alive);
    w_str(w, "segment", t->segment);
    w_enum(w, "suggested_action", "SuggestedAction", (int)t->suggested_action, CX_ACT__COUNT);
    w_nstr(w, "top_genre", t->has_top_genre, t->top_genre);
    w_bool(w, "eligible", t->eligible);
    w_nstr(w, "last_contact_campaign_id", t->has_last_contact_campaign_id, t->last_contact_campaign_id);
}

static void write_response(wr_t *w, const cx_response_t *r) {
    w_str(w, "customer_id", r->customer_id);
    w_long(w, "ts", r->ts_ms);
    w_str(w, "response_id", r->response_id);
    w_str(w, "campaign_id", r->campaign_id);
    w_str(w, "send_event_id", r->send_event_id);
    w_str(w, "response_event_id", r->response_event_id);
    w_enum(w, "response_type", "ResponseType", (int)r->response_type, 2);
    w_enum(w, "action", "ResponseAction", (int)r->action, 2);
    w_long(w, "amount_minor", r->amount_minor);
    w_enum(w, "group", "Group", (int)r->group, CX_GROUP__COUNT);
    w_long(w, "latency_ms", r->latency_ms);
}

static void write_kpi(wr_t *w, const cx_kpi_t *k) {
    w_str(w, "campaign_id", k->campaign_id);
    w_long(w, "ts", k->ts_ms);
    w_long(w, "as_of_ts", k->as_of_ts_ms);
    w_long(w, "sent_test", k->sent_test);
    w_long(w, "sent_control", k->sent_control);
    w_long(w, "responders_test_any", k->responders_test_any);
    w_long(w, "responders_test_hard", k->responders_test_hard);
    w_long(w, "responders_control_any", k->responders_control_any);
    w_long(w, "responders_control_hard", k->responders_control_hard);
    w_long(w, "retrievals", k->retrievals);
    w_long(w, "purchases", k->purchases);
    w_long(w, "turnover_minor", k->turnover_minor);
    w_long(w, "revenue_per_responder_minor", k->revenue_per_responder_minor);
    w_double(w, "response_rate_test", k->response_rate_test);
    w_double(w, "response_rate_control", k->response_rate_control);
    w_ndouble(w, "lift", k->has_lift, k->lift);
    w_ndouble(w, "lift_p_value", k->has_lift_p_value, k->lift_p_value);
    w_bool(w, "closed", k->closed);
}

/* EventType symbols of enriched.avsc (play, purchase, email_send, survey) by cx_event_type_t. */
static const int enriched_event_type_index[CX_EV_CAMPAIGN] = {
    [CX_EV_PLAY] = 0, [CX_EV_PURCHASE] = 1, [CX_EV_EMAIL_SEND] = 2, [CX_EV_SURVEY] = 3};

static cx_err_t write_enriched(wr_t *w, const cx_enriched_t *en) {
    const cx_event_t *ev = en->event;
    if (!ev || ev->type >= CX_EV_CAMPAIGN) return CX_ERR_INVALID;
    w_enum(w, "event_type", "EventType", enriched_event_type_index[ev->type], 4);
    w_str(w, "event_id", ev->event_id);
    w_str(w, "customer_id", ev->customer_id);
    w_long(w, "ts", ev->ts_ms);
    bool play = ev->type == CX_EV_PLAY, pur = ev->type == CX_EV_PURCHASE, mail = ev->type == CX_EV_EMAIL_SEND,
         sur = ev->type == CX_EV_SURVEY;
    const cx_play_t *pl = &ev->u.play;
    const cx_purchase_t *pu = &ev->u.purchase;
    const cx_email_send_t *m = &ev->u.email_send;
    const cx_survey_t *q = &ev->u.survey;
    w_nstr(w, "title_id", play || (pur && pu->has_title_id), play ? pl->title_id : pu->title_id);
    w_nstr(w, "genre", play && pl->has_genre, pl->genre);
    w_nint(w, "seconds_watched", play, pl->seconds_watched);
    w_nstr(w, "device", play && pl->has_device, pl->device);
    w_nstr(w, "campaign_code", !sur && ev->has_campaign_code, ev->campaign_code);
    w_nenum(w, "kind", "PurchaseKind", pur, pur ? (int)pu->kind : 0, CX_PK__COUNT);
    w_nlong(w, "amount_minor", pur, pu->amount_minor);
    w_nstr(w, "currency", pur, pu->currency);
    w_nstr(w, "campaign_id", mail, m->campaign_id);
    w_nenum(w, "group", "Group", mail, mail ? (int)m->group : 0, CX_GROUP__COUNT);
    w_nenum(w, "channel", "Channel", mail, mail ? (int)m->channel : 0, CX_CH__COUNT);
    w_nstr(w, "survey_id", sur, q->survey_id);
    w_nint(w, "score", sur, q->score);
    w_nstr(w, "touchpoint", sur, q->touchpoint);
    w_nstrn(w, "comment", sur && q->has_comment, q->comment, q->comment_len);
    w_nstr(w, "segment", en->has_segment, en->segment);
    w_nint(w, "r_score", en->has_segment, en->r_score);
    w_nint(w, "f_score", en->has_segment, en->f_score);
    w_nint(w, "m_score", en->has_segment, en->m_score);
    w_nint(w, "nps_last", en->has_nps_last, en->nps_last);
    w_ndouble(w, "p_alive", en->has_p_alive, en->p_alive);
    w_nstr(w, "acquisition_campaign_id", en->has_acquisition_campaign_id, en->acquisition_campaign_id);
    w_bool(w, "newsletter_recipient", en->newsletter_recipient);
    w_nstr(w, "response_campaign_id", en->has_response_campaign_id, en->response_campaign_id);
    return CX_OK;
}

static void write_profile(wr_t *w, const cx_profile_out_t *pr) {
    bool tx = pr->has_tx;
    w_str(w, "customer_id", pr->customer_id);
    w_nlong(w, "first_transaction_ts", tx, pr->first_transaction_ts);
    w_nlong(w, "last_transaction_ts", tx, pr->last_transaction_ts);
    w_nlong(w, "last_play_ts", pr->has_last_play_ts, pr->last_play_ts);
    w_nint(w, "recency_days", tx, pr->recency_days);
    w_long(w, "frequency", pr->frequency);
    w_long(w, "monetary_minor", pr->monetary_minor);
    w_nint(w, "r_score", tx, pr->r_score);
    w_nint(w, "f_score", tx, pr->f_score);
    w_nint(w, "m_score", tx, pr->m_score);
    w_nstr(w, "segment", tx && pr->segment, pr->segment);
    w_long(w, "purchases_total", pr->purchases_total);
    w_long(w, "revenue_total_minor", pr->revenue_total_minor);
    w_long(w, "plays_total", pr->plays_total);
    w_nint(w, "nps_last", pr->has_nps_last, pr->nps_last);
    w_long(w, "nps_count", pr->nps_count);
    w_long(w, "bgnbd_x", pr->bgnbd_x);
    w_long(w, "repeat_revenue_minor", pr->repeat_revenue_minor);
    w_long(w, "bgnbd_t_x_days", pr->bgnbd_t_x_days);
    w_long(w, "bgnbd_T_days", pr->bgnbd_T_days);
    w_ndouble(w, "p_alive", pr->has_p_alive, pr->p_alive);
    w_double(w, "expected_transactions_90d", pr->expected_transactions_90d);
    w_long(w, "clv_minor", pr->clv_minor);
    w_nstr(w, "acquisition_campaign_id", pr->has_acquisition_campaign_id, pr->acquisition_campaign_id);
    w_bool(w, "newsletter_recipient", pr->newsletter_recipient);
    size_t n = pr->n_contacts < CX_PROFILE_CONTACTS_OUT ? pr->n_contacts : CX_PROFILE_CONTACTS_OUT;
    w_array_begin(w, "contacts", n);
    for (size_t i = 0; i < n; i++) {
        const cx_contact_t *ct = &pr->contacts[i];
        w_str(w, "campaign_id", ct->campaign_id);
        w_enum(w, "campaign_type", "CampaignType", (int)ct->campaign_type, CX_CT__COUNT);
        w_enum(w, "channel", "Channel", (int)ct->channel, CX_CH__COUNT);
        w_enum(w, "group", "Group", (int)ct->group, CX_GROUP__COUNT);
        w_long(w, "ts", ct->ts_ms);
    }
    w_array_end(w);
}

/* 0x00, BE schema id, then the record straight from the struct. On error `out` is unchanged. */
static cx_err_t encode_direct(cx_codec_t *c, cx_record_kind_t kind, const void *rec, cx_buf_t *out, fieldlog_t *log) {
    int k = kind_index(kind);
    if (!c || k < 0 || !rec || !out) return CX_ERR_INVALID;
    size_t start = out->len;
    wr_t w = {out, CX_OK, log};
    if (w_room(&w, 5)) {
        uint8_t *dst = out->data + out->len;
        uint32_t id = (uint32_t)c->s[k].id;
        dst[0] = 0;
        dst[1] = (uint8_t)(id >> 24);
        dst[2] = (uint8_t)(id >> 16);
        dst[3] = (uint8_t)(id >> 8);
        dst[4] = (uint8_t)id;
        out->len += 5;
    }
    cx_err_t err = CX_OK;
    switch (kind) {
    case CX_REC_PLAY:
    case CX_REC_PURCHASE:
    case CX_REC_EMAIL_SEND:
    case CX_REC_SURVEY: err = write_event(&w, kind, rec); break;
    case CX_REC_CAMPAIGN: write_campaign(&w, rec); break;
    case CX_REC_SEGMENT_CHANGE: write_segment_change(&w, rec); break;
    case CX_REC_TRIGGER: write_trigger(&w, rec); break;
    case CX_REC_RESPONSE: write_response(&w, rec); break;
    case CX_REC_KPI: write_kpi(&w, rec); break;
    case CX_REC_ENRICHED: err = write_enriched(&w, rec); break;
    case CX_REC_PROFILE: write_profile(&w, rec); break;
    }
    if (err == CX_OK) err = w.err;
    if (err != CX_OK) {
        out->len = start;
        return err;
    }
    out->data[out->len] = 0; /* w_room kept the byte */
    return CX_OK;
}

/* ---- start-up self-check: the direct encoders and reader against the .avsc ------------------ */

static const char *ftype_name(int t, const char *enum_name, char *tmp, size_t n) {
    static const char *const names[] = {
        "?", "string", "long", "int", "double", "boolean", "enum", "array", "an unsupported type"};
    int base = t & ~FT_NULLABLE;
    snprintf(tmp, n, "%s%s%s%s", t & FT_NULLABLE ? "[null, " : "",
             names[base >= 0 && base <= FT_UNSUPPORTED ? base : 0], base == FT_ENUM && enum_name ? " " : "",
             base == FT_ENUM && enum_name ? enum_name : "");
    if (t & FT_NULLABLE) snprintf(tmp + strlen(tmp), n - strlen(tmp), "]");
    return tmp;
}

/* The schema's fields, flattened as fieldlog_t names them. */
static void flatten_schema(avro_schema_t rec, fieldlog_t *l) {
    for (size_t i = 0; i < avro_schema_record_size(rec); i++) {
        const char *name = avro_schema_record_field_name(rec, (int)i);
        avro_schema_t fs = avro_schema_record_field_get_by_index(rec, (int)i);
        int nullable = 0;
        if (is_avro_union(fs)) {
            bool shape = avro_schema_union_size(fs) == 2 && is_avro_null(avro_schema_union_branch(fs, 0));
            if (!shape) {
                flog_add(l, name, FT_UNSUPPORTED, NULL, 0);
                continue;
            }
            nullable = FT_NULLABLE;
            fs = avro_schema_union_branch(fs, 1);
        }
        switch (avro_typeof(fs)) {
        case AVRO_STRING: flog_add(l, name, nullable | FT_STRING, NULL, 0); break;
        case AVRO_INT64: flog_add(l, name, nullable | FT_LONG, NULL, 0); break;
        case AVRO_INT32: flog_add(l, name, nullable | FT_INT, NULL, 0); break;
        case AVRO_DOUBLE: flog_add(l, name, nullable | FT_DOUBLE, NULL, 0); break;
        case AVRO_BOOLEAN: flog_add(l, name, nullable | FT_BOOL, NULL, 0); break;
        case AVRO_ENUM:
            flog_add(l, name, nullable | FT_ENUM, avro_schema_name(fs), avro_schema_enum_number_of_symbols(fs));
            break;
        case AVRO_ARRAY: {
            flog_add(l, name, nullable | FT_ARRAY, NULL, 0);
            avro_schema_t items = avro_schema_array_items(fs);
            l->array = name;
            if (is_avro_record(items))
                flatten_schema(items, l);
            else if (is_avro_string(items))
                flog_add(l, "", FT_STRING, NULL, 0);
            else
                flog_add(l, "", FT_UNSUPPORTED, NULL, 0);
            l->array = NULL;
            break;
        }
        default: flog_add(l, name, nullable | FT_UNSUPPORTED, NULL, 0); break;
        }
    }
}

static bool same_fields(const kind_slot_t *s, const struct kind_info *k, const fieldlog_t *got, const char *who,
                        char *errstr, size_t errstr_size) {
    fieldlog_t want = {0};
    flatten_schema(s->schema, &want);
    char t1[64], t2[64];
    for (int i = 0; i < want.n || i < got->n; i++) {
        const fieldlog_entry_t *a = i < want.n ? &want.f[i] : NULL, *b = i < got->n ? &got->f[i] : NULL;
        bool same = a && b && strcmp(a->name, b->name) == 0 && a->type == b->type &&
                    (a->type & ~FT_NULLABLE) != FT_UNSUPPORTED &&
                    ((a->type & ~FT_NULLABLE) != FT_ENUM ||
                     (a->n_symbols == b->n_symbols && b->enum_name && strcmp(a->enum_name, b->enum_name) == 0));
        if (same) continue;
        char is[160], has[160];
        if (a)
            snprintf(is, sizeof is, "%s %s", a->name, ftype_name(a->type, a->enum_name, t1, sizeof t1));
        else
            snprintf(is, sizeof is, "absent");
        if (b)
            snprintf(has, sizeof has, "has %s %s", b->name, ftype_name(b->type, b->enum_name, t2, sizeof t2));
        else
            snprintf(has, sizeof has, "has no field there");
        cx_seterr(errstr, errstr_size,
                  "schema %s: field %d is %s but the direct %s %s: change processor/codec.c together with the .avsc",
                  k->file, i + 1, is, who, has);
        return false;
    }
    if (want.overflow || got->overflow) {
        cx_seterr(errstr, errstr_size, "schema %s: too many fields for the self-check", k->file);
        return false;
    }
    return true;
}

/* Runs every direct encoder (and the direct reader of the input kinds) once on a record with every
 * array holding one item, logging the fields, and compares them with the parsed .avsc. */
static bool direct_self_check(cx_codec_t *c, char *errstr, size_t errstr_size) {
    static const char title[] = "t";
    const char *titles[] = {title};
    cx_event_t ev;
    cx_campaign_t camp;
    cx_segment_change_t sc;
    cx_trigger_t trig;
    cx_response_t resp;
    cx_kpi_t kpi;
    cx_enriched_t en;
    cx_profile_out_t *prof = calloc(1, sizeof *prof);
    cx_buf_t b = CX_BUF_INIT;
    bool ok = prof != NULL;
    if (!ok) cx_seterr(errstr, errstr_size, "out of memory");
    for (int i = 0; ok && i < N_KINDS; i++) {
        cx_record_kind_t kind = kind_infos[i].kind;
        const void *rec = NULL;
        memset(&ev, 0, sizeof ev);
        switch (kind) {
        case CX_REC_PLAY:
            ev.type = CX_EV_PLAY;
            rec = &ev;
            break;
        case CX_REC_PURCHASE:
            ev.type = CX_EV_PURCHASE;
            rec = &ev;
            break;
        case CX_REC_EMAIL_SEND:
            ev.type = CX_EV_EMAIL_SEND;
            rec = &ev;
            break;
        case CX_REC_SURVEY:
            ev.type = CX_EV_SURVEY;
            rec = &ev;
            break;
        case CX_REC_CAMPAIGN:
            memset(&camp, 0, sizeof camp);
            camp.promoted_title_ids = (char **)titles;
            camp.n_promoted = 1;
            rec = &camp;
            break;
        case CX_REC_SEGMENT_CHANGE:
            memset(&sc, 0, sizeof sc);
            rec = &sc;
            break;
        case CX_REC_TRIGGER:
            memset(&trig, 0, sizeof trig);
            rec = &trig;
            break;
        case CX_REC_RESPONSE:
            memset(&resp, 0, sizeof resp);
            rec = &resp;
            break;
        case CX_REC_KPI:
            memset(&kpi, 0, sizeof kpi);
            rec = &kpi;
            break;
        case CX_REC_ENRICHED:
            memset(&en, 0, sizeof en);
            ev.type = CX_EV_PLAY;
            en.event = &ev;
            rec = &en;
            break;
        case CX_REC_PROFILE:
            prof->n_contacts = 1;
            rec = prof;
            break;
        }
        fieldlog_t log = {0};
        b.len = 0;
        if (encode_direct(c, kind, rec, &b, &log) != CX_OK) {
            cx_seterr(errstr, errstr_size, "schema %s: the direct encoder fails on an empty record",
                      kind_infos[i].file);
            ok = false;
            break;
        }
        ok = same_fields(&c->s[i], &kind_infos[i], &log, "encoder", errstr, errstr_size);
        if (ok && kind <= CX_REC_SURVEY) {
            raw_event_t raw;
            fieldlog_t rlog = {0};
            char d[128];
            read_event_wire(kind, b.data, b.len, &raw, &rlog, d, sizeof d); /* a failure shows as a missing field */
            ok = same_fields(&c->s[i], &kind_infos[i], &rlog, "reader", errstr, errstr_size);
        }
    }
    free(prof);
    cx_buf_free(&b);
    return ok;
}

/* ---- value -> JSON ----------------------------------------------------------------------- */

static cx_err_t json_write(cx_buf_t *b, avro_value_t *v);

/* Record fields in schema order; `prefix` (may be NULL) is written first, inside the braces. */
static cx_err_t json_write_record(cx_buf_t *b, avro_value_t *v, const char *prefix) {
    cx_err_t e = cx_buf_putc(b, '{');
    bool first = true;
    if (e == CX_OK && prefix) {
        e = cx_buf_append(b, prefix, strlen(prefix));
        first = false;
    }
    size_t n = 0;
    avro_value_get_size(v, &n);
    for (size_t i = 0; e == CX_OK && i < n; i++) {
        avro_value_t child;
        const char *name;
        avro_value_get_by_index(v, i, &child, &name);
        if (!first) e = cx_buf_putc(b, ',');
        first = false;
        if (e == CX_OK) e = cx_buf_json_str(b, name, strlen(name));
        if (e == CX_OK) e = cx_buf_putc(b, ':');
        if (e == CX_OK) e = json_write(b, &child);
    }
    return e == CX_OK ? cx_buf_putc(b, '}') : e;
}

static cx_err_t json_write(cx_buf_t *b, avro_value_t *v) {
    switch (avro_value_get_type(v)) {
    case AVRO_NULL: return cx_buf_append(b, "null", 4);
    case AVRO_BOOLEAN: {
        int x = 0;
        avro_value_get_boolean(v, &x);
        return x ? cx_buf_append(b, "true", 4) : cx_buf_append(b, "false", 5);
    }
    case AVRO_INT32: {
        int32_t x = 0;
        avro_value_get_int(v, &x);
        return cx_buf_appendf(b, "%" PRId32, x);
    }
    case AVRO_INT64: {
        int64_t x = 0;
        avro_value_get_long(v, &x);
        return cx_buf_appendf(b, "%" PRId64, x);
    }
    case AVRO_FLOAT: {
        float x = 0;
        avro_value_get_float(v, &x);
        return cx_buf_json_double(b, x);
    }
    case AVRO_DOUBLE: {
        double x = 0;
        avro_value_get_double(v, &x);
        return cx_buf_json_double(b, x);
    }
    case AVRO_STRING: {
        const char *s = "";
        size_t size = 0;
        avro_value_get_string(v, &s, &size);
        return cx_buf_json_str(b, s, size ? size - 1 : 0);
    }
    case AVRO_BYTES:
    case AVRO_FIXED: {
        const void *s = NULL;
        size_t size = 0;
        if (avro_value_get_type(v) == AVRO_BYTES)
            avro_value_get_bytes(v, &s, &size);
        else
            avro_value_get_fixed(v, &s, &size);
        return cx_buf_json_str(b, s ? s : "", size);
    }
    case AVRO_ENUM: {
        int idx = 0;
        avro_value_get_enum(v, &idx);
        const char *sym = avro_schema_enum_get(avro_value_get_schema(v), idx);
        return sym ? cx_buf_json_str(b, sym, strlen(sym)) : CX_ERR_INVALID;
    }
    case AVRO_UNION: {
        avro_value_t branch;
        if (avro_value_get_current_branch(v, &branch) != 0) return cx_buf_append(b, "null", 4);
        return json_write(b, &branch);
    }
    case AVRO_RECORD: return json_write_record(b, v, NULL);
    case AVRO_ARRAY:
    case AVRO_MAP: {
        bool is_map = avro_value_get_type(v) == AVRO_MAP;
        cx_err_t e = cx_buf_putc(b, is_map ? '{' : '[');
        size_t n = 0;
        avro_value_get_size(v, &n);
        for (size_t i = 0; e == CX_OK && i < n; i++) {
            avro_value_t el;
            const char *key = NULL;
            avro_value_get_by_index(v, i, &el, &key);
            if (i) e = cx_buf_putc(b, ',');
            if (e == CX_OK && is_map) {
                e = cx_buf_json_str(b, key, strlen(key));
                if (e == CX_OK) e = cx_buf_putc(b, ':');
            }
            if (e == CX_OK) e = json_write(b, &el);
        }
        return e == CX_OK ? cx_buf_putc(b, is_map ? '}' : ']') : e;
    }
    default: return CX_ERR_INVALID;
    }
}

/* Fills the kind's generic value from the struct (JSON output and the generic wire encoder). */
static cx_err_t fill_value(cx_codec_t *c, cx_record_kind_t kind, const void *rec, kind_slot_t **slot) {
    int k = kind_index(kind);
    if (!c || k < 0 || !rec) return CX_ERR_INVALID;
    kind_slot_t *s = &c->s[k];
    put_t p = {c, &s->value, 0};
    cx_err_t err = CX_OK;
    switch (kind) {
    case CX_REC_PLAY:
    case CX_REC_PURCHASE:
    case CX_REC_EMAIL_SEND:
    case CX_REC_SURVEY: err = fill_event(&p, kind, rec); break;
    case CX_REC_CAMPAIGN: fill_campaign(&p, rec); break;
    case CX_REC_SEGMENT_CHANGE: fill_segment_change(&p, rec); break;
    case CX_REC_TRIGGER: fill_trigger(&p, rec); break;
    case CX_REC_RESPONSE: fill_response(&p, rec); break;
    case CX_REC_KPI: fill_kpi(&p, rec); break;
    case CX_REC_ENRICHED: err = fill_enriched(&p, rec); break;
    case CX_REC_PROFILE: fill_profile(&p, rec); break;
    }
    if (err != CX_OK) return err;
    if (p.rc) return p.rc == ENOMEM ? CX_ERR_NOMEM : CX_ERR_INVALID;
    *slot = s;
    return CX_OK;
}

cx_err_t cx_codec_encode_generic(cx_codec_t *c, cx_record_kind_t kind, const void *rec, cx_buf_t *out) {
    kind_slot_t *s;
    cx_err_t err = out ? fill_value(c, kind, rec, &s) : CX_ERR_INVALID;
    if (err != CX_OK) return err;
    size_t size = 0;
    if (avro_value_sizeof(&s->value, &size) != 0) return CX_ERR_INVALID;
    if ((err = cx_buf_reserve(out, 5 + size + 1)) != CX_OK) return err;
    uint8_t *dst = out->data + out->len;
    uint32_t id = (uint32_t)s->id;
    dst[0] = 0;
    dst[1] = (uint8_t)(id >> 24);
    dst[2] = (uint8_t)(id >> 16);
    dst[3] = (uint8_t)(id >> 8);
    dst[4] = (uint8_t)id;
    avro_writer_memory_set_dest(c->writer, (const char *)dst + 5, (int64_t)size);
    if (avro_value_write(c->writer, &s->value) != 0 || avro_writer_tell(c->writer) != (int64_t)size)
        return CX_ERR_INVALID;
    out->len += 5 + size;
    out->data[out->len] = 0;
    return CX_OK;
}

cx_err_t cx_codec_encode(cx_codec_t *c, cx_record_kind_t kind, const void *rec, cx_format_t fmt, cx_buf_t *out) {
    if (fmt != CX_FMT_JSON) return encode_direct(c, kind, rec, out, NULL);
    kind_slot_t *s;
    cx_err_t err = out ? fill_value(c, kind, rec, &s) : CX_ERR_INVALID;
    if (err != CX_OK) return err;
    char prefix[48];
    const char *pre = NULL;
    if (kind <= CX_REC_CAMPAIGN) {
        snprintf(prefix, sizeof prefix, "\"event_type\":\"%s\"",
                 kind == CX_REC_CAMPAIGN ? "campaign" : cx_event_type_name(((const cx_event_t *)rec)->type));
        pre = prefix;
    }
    size_t start = out->len;
    if ((err = json_write_record(out, &s->value, pre)) != CX_OK) out->len = start;
    return err;
}
