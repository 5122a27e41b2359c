/* demo.c — `cxstream demo` (being written). */
#include <stdio.h>
#include "cli.h"
int cx_cmd_demo(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "demo: not yet\n"); return 1; }
