/*
 * changelog.h — the compacted changelog topic that backs each state partition (DESIGN §2), and
 * restoring a partition's RocksDB state from it.
 *
 * Every flush batch is mirrored record for record: a store key [part u16][tag][rest] becomes a
 * record of changelog partition `part` whose key is
 *   - the customer_id for a profile ('P'): value = the profile encoding (profile.h, versioned),
 *   - 0x00, tag, rest for every other mirrored key (partition meta 'M', aggregates 'A'): value =
 *     the store value (each carries its own version).
 * The timer index ('T') is not mirrored: restore derives it from each profile's index_due_ms. The
 * changelog checkpoint is local only: store key [part]['M']"c" = the next changelog offset not yet
 * reflected in local state (8 bytes LE), written in the same batch as the state it covers. The
 * record format is documented in docs/topics.md.
 *
 * Restore reads changelog partition p from the checkpoint (warm restart: only the tail) or from the
 * beginning (no local checkpoint) to its end, applies the records into RocksDB (profiles with their
 * timer index keys, meta, aggregates) in batches, and writes the new checkpoint with the last one.
 *
 * Ownership: the restorer borrows the store; the Kafka handle given to cx_changelog_restore is
 * borrowed (its assignment is changed during the call and cleared at the end).
 */
#ifndef CX_CHANGELOG_H
#define CX_CHANGELOG_H

#include <librdkafka/rdkafka.h>

#include "buf.h"
#include "cx.h"
#include "store.h"

#define CX_CHANGELOG_INTERNAL 0x00       /* first key byte of a non-profile record */
#define CX_GROUP_HEADER       "cx.group" /* header of changelog and partials records: the writer's group.id */

/* The changelog record of a store key: partition and key into *out. false when the key is not
 * mirrored (timer index, checkpoint, unknown tags). */
bool cx_changelog_key(const void *store_key, size_t kl, uint16_t *part, cx_buf_t *out);

/* Mirrors every mirrored operation of a flush batch through `produce` (deletes as tombstones,
 * val NULL). Stops at the first error. *records counts the calls made. */
typedef cx_err_t (*cx_changelog_produce_cb)(void *opaque, uint16_t part, const void *key, size_t kl, const void *val,
                                            size_t vl);
cx_err_t cx_changelog_mirror(const cx_store_batch_t *b, cx_buf_t *scratch, cx_changelog_produce_cb produce,
                             void *opaque, uint64_t *records);

/* The local checkpoint of `part`: next changelog offset, -1 when none is stored. */
cx_err_t cx_changelog_checkpoint_get(cx_store_t *s, uint16_t part, int64_t *next_offset, char *errstr,
                                     size_t errstr_size);
void cx_changelog_checkpoint_put(cx_store_batch_t *b, uint16_t part, int64_t next_offset);

/* ---- applying changelog records to the store ---- */
typedef struct cx_restorer cx_restorer_t;
cx_restorer_t *cx_restorer_new(cx_store_t *store, uint16_t part);
void cx_restorer_destroy(cx_restorer_t *r);
/* One record (val NULL: tombstone). Malformed records are refused with CX_ERR_STATE. */
cx_err_t cx_restorer_apply(cx_restorer_t *r, const void *key, size_t kl, const void *val, size_t vl, char *errstr,
                           size_t errstr_size);
/* Writes what is pending, with the checkpoint `next_offset` (>= 0), in one batch. */
cx_err_t cx_restorer_finish(cx_restorer_t *r, int64_t next_offset, char *errstr, size_t errstr_size);
uint64_t cx_restorer_records(const cx_restorer_t *r);

/* ---- reading a changelog partition from Kafka ---- */
typedef struct cx_restore_progress {
    uint16_t part;
    int64_t from;     /* first offset read (the checkpoint, or the log start) */
    int64_t end;      /* high watermark when the restore began */
    int64_t position; /* next offset to read */
    uint64_t records; /* records applied so far */
    double seconds;   /* elapsed */
} cx_restore_progress_t;

/* Restores `part` from `topic` starting at from_offset (>= 0, or RD_KAFKA_OFFSET_BEGINNING) to the
 * partition's end (read_committed end when rk is configured so). rk: a consumer outside any group
 * with enable.partition.eof=true. `progress` (may be NULL) is called about every 50,000 records and
 * at the end. The final checkpoint is written even when nothing was read. A record whose cx.group
 * header names another group than `group` stops the restore with an error (two applications on one
 * changelog topic would restore each other's customers; records without the header are accepted). */
cx_err_t cx_changelog_restore(rd_kafka_t *rk, const char *topic, const char *group, cx_store_t *store, uint16_t part,
                              int64_t from_offset, void (*progress)(void *opaque, const cx_restore_progress_t *pr),
                              void *opaque, cx_restore_progress_t *result, char *errstr, size_t errstr_size);

/* True when message m carries a cx.group header that differs from `group`; the header's value is
 * then copied into other (NUL-terminated, truncated to other_size). */
bool cx_changelog_foreign_group(const rd_kafka_message_t *m, const char *group, char *other, size_t other_size);

#endif
