/*
 * profile_lines.h — collects customers' Profile records as JSON lines and writes them sorted by
 * customer_id: replay's profiles.jsonl and `cxstream state dump` share it.
 *
 * Ownership: the collector borrows the codec (for the JSON encoding) and owns its lines.
 */
#ifndef CX_PROFILE_LINES_H
#define CX_PROFILE_LINES_H

#include <stdio.h>

#include "codec.h"

typedef struct cx_profile_lines {
    cx_codec_t *codec; /* borrowed */
    cx_buf_t buf;
    char **lines; /* "<customer_id>\0<json>" so sorting compares ids exactly */
    size_t n, cap;
    cx_err_t rc; /* first error of cx_profile_lines_add, CX_OK otherwise */
} cx_profile_lines_t;

void cx_profile_lines_init(cx_profile_lines_t *pl, cx_codec_t *codec);
/* A cx_pipeline_each_profile callback (opaque = the collector); errors land in pl->rc. */
void cx_profile_lines_add(void *opaque, const cx_profile_out_t *prof);
/* Sorts by customer_id and writes one JSON object per line. CX_ERR_IO on a write error. */
cx_err_t cx_profile_lines_write(cx_profile_lines_t *pl, FILE *out);
void cx_profile_lines_free(cx_profile_lines_t *pl);

#endif
