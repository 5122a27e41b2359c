/*
 * fit.h — maximum-likelihood fits of the population parameters of BG/NBD (bgnbd.h) and
 * Gamma-Gamma (gammagamma.h), and the `cxstream fit` subcommand that runs them on a CDNOW-style
 * summary CSV or on cxstream's own profiles.jsonl (DESIGN §3, docs/model.md).
 *
 * The fits maximise the total log-likelihood by Nelder-Mead on the logarithms of the parameters
 * (so they stay positive), from several starting points, each run restarted from its optimum
 * until a restart no longer improves it. They are deterministic. Inputs are borrowed for the
 * duration of the call; nothing is retained.
 */
#ifndef CX_FIT_H
#define CX_FIT_H

#include <stddef.h>

#include "bgnbd.h"
#include "cx.h"
#include "gammagamma.h"

/* Fits BG/NBD to n customers (x[i] repeat transactions, last at t_x[i], observed for T[i], all
 * times in one unit). Requires n >= 1, finite x >= 0, 0 <= t_x <= T; otherwise CX_ERR_INVALID
 * naming the first bad index. On success fills *out and, if loglik is not NULL, the total
 * log-likelihood at the optimum. CX_ERR_NOMEM, or CX_ERR_FATAL when no finite optimum is found. */
cx_err_t cx_fit_bgnbd(const double *x, const double *t_x, const double *T, size_t n, cx_bgnbd_params_t *out,
                      double *loglik, char *errstr, size_t errstr_size);

/* Fits Gamma-Gamma to n customers with x[i] > 0 repeat transactions of mean value m[i] > 0 (the
 * caller filters out the others; a row that is not is CX_ERR_INVALID). Requires n >= 2. */
cx_err_t cx_fit_gg(const double *x, const double *m, size_t n, cx_gg_params_t *out, double *loglik, char *errstr,
                   size_t errstr_size);

/* `cxstream fit --summary FILE.csv [--unit-days D]` or `fit --profiles FILE.jsonl [--unit-days
 * D]`; argv[0] is "fit". Prints one JSON object on stdout, messages on stderr. Returns the exit
 * code: 0 success, 1 runtime failure (unreadable file, no optimum), 2 usage or input error (bad
 * flag, malformed row: the message names the file, line and column). */
int cx_cmd_fit(int argc, char **argv);

#endif
