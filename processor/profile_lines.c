/*
 * profile_lines.c — sorted Profile JSON lines (see profile_lines.h).
 */
#include "profile_lines.h"

#include <stdlib.h>
#include <string.h>

void cx_profile_lines_init(cx_profile_lines_t *pl, cx_codec_t *codec) {
    memset(pl, 0, sizeof *pl);
    pl->codec = codec;
}

void cx_profile_lines_add(void *opaque, const cx_profile_out_t *prof) {
    cx_profile_lines_t *pl = opaque;
    if (pl->rc != CX_OK) return;
    cx_buf_reset(&pl->buf);
    if ((pl->rc = cx_codec_encode(pl->codec, CX_REC_PROFILE, prof, CX_FMT_JSON, &pl->buf)) != CX_OK) return;
    if (pl->n == pl->cap) {
        size_t cap = pl->cap ? pl->cap * 2 : 1024;
        char **a = realloc(pl->lines, cap * sizeof *a);
        if (!a) {
            pl->rc = CX_ERR_NOMEM;
            return;
        }
        pl->lines = a;
        pl->cap = cap;
    }
    size_t idlen = strlen(prof->customer_id);
    char *line = malloc(idlen + 1 + pl->buf.len + 1);
    if (!line) {
        pl->rc = CX_ERR_NOMEM;
        return;
    }
    memcpy(line, prof->customer_id, idlen + 1);
    memcpy(line + idlen + 1, pl->buf.data, pl->buf.len);
    line[idlen + 1 + pl->buf.len] = 0;
    pl->lines[pl->n++] = line;
}

static int cmp_lines(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

cx_err_t cx_profile_lines_write(cx_profile_lines_t *pl, FILE *out) {
    if (pl->n > 1) qsort(pl->lines, pl->n, sizeof *pl->lines, cmp_lines);
    for (size_t i = 0; i < pl->n; i++) {
        const char *json = pl->lines[i] + strlen(pl->lines[i]) + 1;
        if (fputs(json, out) == EOF || fputc('\n', out) == EOF) return CX_ERR_IO;
    }
    return fflush(out) == 0 ? CX_OK : CX_ERR_IO;
}

void cx_profile_lines_free(cx_profile_lines_t *pl) {
    for (size_t i = 0; i < pl->n; i++)
        free(pl->lines[i]);
    free(pl->lines);
    cx_buf_free(&pl->buf);
    memset(pl, 0, sizeof *pl);
}
