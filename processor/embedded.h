/*
 * embedded.h — files compiled into the binary (schemas/ .avsc files, schemas/ids.json,
 * processor/web/ files), generated at build time by tools/embed.cmake.
 */
#ifndef CX_EMBEDDED_H
#define CX_EMBEDDED_H
#include <stddef.h>
struct cx_embedded_file {
    const char *name; /* "play.avsc", "ids.json", "web/index.html" */
    const char *data; /* NUL-terminated */
    size_t size;
};
extern const struct cx_embedded_file cx_embedded_files[];
/* The file called `name`, or NULL. */
const struct cx_embedded_file *cx_embedded_find(const char *name);
#endif
