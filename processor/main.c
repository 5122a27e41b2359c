/*
 * main.c — the one binary, `cxstream`, and its subcommands in the style of git and kcat
 * (DESIGN §3). Each subcommand parses its own flags and returns its exit code: 0 success,
 * 1 runtime failure, 2 usage or configuration error.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "cx.h"
#include "fit.h"
#include "gen.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command_t;

static int cmd_help(int argc, char **argv);

static const command_t commands[] = {
    {"run", cx_cmd_run, "the processor: consume, keep state, emit (run -c FILE [--set k=v]...)"},
    {"demo", cx_cmd_demo, "in-process Kafka cluster + generator + processor with a live summary"},
    {"gen", cx_cmd_gen, "produce synthetic, realistic event streams to the input topics"},
    {"replay", cx_cmd_replay, "the pipeline over a JSON-lines file, outputs as JSON lines"},
    {"state", cx_cmd_state, "a stopped processor's local state: dump profiles | offsets"},
    {"fit", cx_cmd_fit, "fit BG/NBD (and Gamma-Gamma) parameters by maximum likelihood"},
    {"help", cmd_help, "help [command] | help config (the configuration reference)"},
};

static void usage(FILE *f) {
    fprintf(f,
            "cxstream %s — real-time customer engine for streaming-video businesses\n\n"
            "usage: cxstream <command> [options]\n\ncommands:\n",
            CX_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n  cxstream --version\n  cxstream help <command>   (same as cxstream <command> --help)\n");
}

static int cmd_help(int argc, char **argv) {
    if (argc < 2) {
        usage(stdout);
        return CX_EXIT_OK;
    }
    if (strcmp(argv[1], "config") == 0) return cx_config_write_reference(stdout) == CX_OK ? 0 : 1;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, argv[1]) == 0 && commands[i].fn != cmd_help) {
            char *args[] = {argv[1], "--help", NULL};
            return commands[i].fn(2, args);
        }
    fprintf(stderr, "cxstream help: unknown command '%s'\n", argv[1]);
    return CX_EXIT_USAGE;
}

/* glibc serves allocations below its mmap threshold from the heap and raises the threshold to the
 * size of any mmapped block freed (up to 32 MB), so the large buffers a commit builds and frees (the
 * RocksDB write batch grows by doubling to tens of MB) come to be served from the heap, and the holes
 * they leave stay resident. A fixed 256 KB threshold gives them back on free: peak RSS of the
 * end-to-end benchmark 717-771 -> 657-690 MB (docs/performance-history.md). GLIBC_TUNABLES's
 * glibc.malloc.mmap_threshold, when set, wins. */
#define MMAP_THRESHOLD_BYTES (256 * 1024)
/* A fixed mmap threshold also fixes the trim threshold at glibc's 128 KB: the top of the heap went
 * back to the system whenever that much was free and was faulted in again soon after (a commit's
 * changelog records and a compact cache's encodings come and go by the hundred thousand). 64 MB kept:
 * minor faults -35 to -55% per end-to-end run, process CPU -2 to -4 s of ~28 s at the defaults,
 * peak RSS +4 to +16 MB (docs/performance-history.md). GLIBC_TUNABLES's glibc.malloc.trim_threshold wins. */
#define TRIM_THRESHOLD_BYTES (64 * 1024 * 1024)

int main(int argc, char **argv) {
    const char *tun = getenv("GLIBC_TUNABLES");
    if (!tun || !strstr(tun, "mmap_threshold")) mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    if (!tun || !strstr(tun, "trim_threshold")) mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
    if (argc < 2) {
        usage(stderr);
        return CX_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("cxstream %s\n", CX_VERSION);
        return CX_EXIT_OK;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return CX_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, argv[1]) == 0) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "cxstream: unknown command '%s' (try cxstream help)\n", argv[1]);
    return CX_EXIT_USAGE;
}
