/*
 * owners.h — which instance owns which input partition, for interactive queries across instances
 * (/customers/{id} on a non-owner answers 307 to the owner). Every instance publishes, for each
 * input partition it owns, a cx.partials record "owner::<p>" whose value is
 * {"owner":"host:port","generation":G,"ts":T} (docs/topics.md): on every assignment and again at
 * most every CX_OWNERS_REPUBLISH_MS at a commit cycle. Every instance reads cx.partials in full and
 * keeps partition → address here. A record replaces the known one unless it is older (ts, then
 * generation), so a late record of a revoked owner does not undo the new owner's.
 *
 * Thread safety: the map has its own mutex (the processing thread applies, HTTP threads read).
 * Ownership: cx_owners_t owns its entries; returned addresses are copied into the caller's buffer.
 */
#ifndef CX_OWNERS_H
#define CX_OWNERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"
#include "cx.h"

#define CX_OWNER_ADDR_MAX      255   /* longest advertised host:port */
#define CX_OWNERS_REPUBLISH_MS 30000 /* republish owned partitions at most this often */

typedef struct cx_owners cx_owners_t;

cx_owners_t *cx_owners_new(void);
void cx_owners_destroy(cx_owners_t *o); /* NULL ok */

/* A cx.partials record. Keys of other kinds (campaign:, wm:, ...) and tombstones (value NULL) are
 * ignored with CX_OK; CX_ERR_INVALID for a malformed owner record (key or value). */
cx_err_t cx_owners_apply(cx_owners_t *o, const char *key, size_t klen, const void *value, size_t vlen);
/* The owner address of partition p into addr (NUL-terminated); false when unknown. */
bool cx_owners_get(cx_owners_t *o, int32_t p, char *addr, size_t addr_size);

/* The owner record of partition p: key "owner::<p>" into key (≥ 24 bytes) and the JSON value
 * appended to val (reset first). */
cx_err_t cx_owners_record(int32_t p, const char *addr, int64_t generation, int64_t ts_ms, char *key, size_t key_size,
                          cx_buf_t *val);

/* The address this instance advertises: http.advertised, else http.bind:http.port, else (bind
 * empty or 0.0.0.0) <hostname>:http.port. false (addr "") when HTTP is off (http.port 0). */
bool cx_owners_self_address(const cx_config_t *cfg, char *addr, size_t addr_size);

/* True for a usable address: 1..CX_OWNER_ADDR_MAX bytes of [A-Za-z0-9._:[]-] (safe in a Location). */
bool cx_owners_addr_valid(const char *addr, size_t len);

#endif
