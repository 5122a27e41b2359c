/* main.c — placeholder until the subcommands land. */
#include <stdio.h>
#include "cx.h"
int main(void) { printf("cxstream %s\n", CX_VERSION); return 0; }
