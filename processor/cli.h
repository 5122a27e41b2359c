/*
 * cli.h — what the subcommands share: building the configuration from defaults, a file, the
 * environment and --set (DESIGN §3 precedence), and the exit-code convention (0 ok, 1 runtime
 * failure, 2 usage or configuration error).
 */
#ifndef CX_CLI_H
#define CX_CLI_H

#include "config.h"

enum { CX_EXIT_OK = 0, CX_EXIT_RUNTIME = 1, CX_EXIT_USAGE = 2 };

/* Collected -c/--set options of a subcommand. */
typedef struct cx_cli_conf {
    const char *file; /* NULL: none */
    const char **sets;
    size_t n_sets, cap_sets;
} cx_cli_conf_t;

/* Remembers one --set key=value (the pointer is borrowed from argv). */
int cx_cli_add_set(cx_cli_conf_t *cc, const char *kv);
void cx_cli_conf_free(cx_cli_conf_t *cc);
/* Defaults < file < CXSTREAM_* environment < --set, then cross-key validation; applies log.level
 * and log.format. NULL with errstr on failure (exit 2). */
cx_config_t *cx_cli_config(const cx_cli_conf_t *cc, char *errstr, size_t errstr_size);

/* Installs `handler` for SIGINT and SIGTERM (it should only set a volatile sig_atomic_t flag). */
void cx_cli_catch_stop_signals(void (*handler)(int));

int cx_cmd_replay(int argc, char **argv);
int cx_cmd_run(int argc, char **argv);
int cx_cmd_demo(int argc, char **argv);
/* `cxstream state dump|offsets`: reads a stopped processor's state.dir (state_cmd.c). */
int cx_cmd_state(int argc, char **argv);

#endif
