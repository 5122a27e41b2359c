/* embedded.c — lookup in the generated table of embedded files. */
#include "embedded.h"

#include <string.h>

const struct cx_embedded_file *cx_embedded_find(const char *name) {
    for (const struct cx_embedded_file *f = cx_embedded_files; f->name; f++)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}
