/*
 * cli.c — configuration assembly and stop-signal handling shared by run, demo and replay.
 */
#include "cli.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

int cx_cli_add_set(cx_cli_conf_t *cc, const char *kv) {
    if (cc->n_sets == cc->cap_sets) {
        size_t cap = cc->cap_sets ? cc->cap_sets * 2 : 8;
        const char **a = realloc(cc->sets, cap * sizeof *a);
        if (!a) return -1;
        cc->sets = a;
        cc->cap_sets = cap;
    }
    cc->sets[cc->n_sets++] = kv;
    return 0;
}

void cx_cli_conf_free(cx_cli_conf_t *cc) {
    free(cc->sets);
    cc->sets = NULL;
    cc->n_sets = cc->cap_sets = 0;
}

cx_config_t *cx_cli_config(const cx_cli_conf_t *cc, char *errstr, size_t errstr_size) {
    cx_config_t *cfg = cx_config_new();
    if (!cfg) {
        cx_seterr(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (cc->file && cx_config_load_file(cfg, cc->file, errstr, errstr_size) != CX_OK) goto fail;
    if (cx_config_load_env(cfg, NULL, errstr, errstr_size) != CX_OK) goto fail;
    for (size_t i = 0; i < cc->n_sets; i++)
        if (cx_config_set_kv(cfg, cc->sets[i], "--set", errstr, errstr_size) != CX_OK) goto fail;
    if (cx_config_validate(cfg, errstr, errstr_size) != CX_OK) goto fail;
    cx_log_min_level = cfg->log_level;
    cx_log_json = cfg->log_format == CX_LOG_FORMAT_JSON;
    return cfg;
fail:
    cx_config_destroy(cfg);
    return NULL;
}

void cx_cli_catch_stop_signals(void (*handler)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
