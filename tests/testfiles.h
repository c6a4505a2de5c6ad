/* testfiles.h: what the file-format tests share: a private temporary folder, whole-file
 * reads, and the readers of fixture expectations written one JSON object per line by the
 * tests/gen/ scripts. Header-only; each test includes it once (functions a test does not
 * use are marked unused). */
#ifndef TESTFILES_H
#define TESTFILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TESTFILES_UNUSED __attribute__((unused))

static char tmpdir[256];

/* /tmp/nnu_test_<name>_<pid>, created */
static TESTFILES_UNUSED void tmpdir_make(const char *name) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nnu_test_%s_%ld", name, (long)getpid());
    mkdir(tmpdir, 0700);
}

static TESTFILES_UNUSED void tmpdir_remove(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* tmpdir/name; four rotating buffers, so up to four results can be used at once */
static TESTFILES_UNUSED const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

/* the whole file, NUL-terminated (malloc'd; NULL when unreadable); *n its size */
static TESTFILES_UNUSED unsigned char *slurp(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = *n >= 0 ? malloc((size_t)*n + 1) : NULL;
    if (b && fread(b, 1, (size_t)*n, f) != (size_t)*n) { free(b); b = NULL; }
    if (b) b[*n] = 0;
    fclose(f);
    return b;
}

/* ---- one JSON object per line: the value after "key": ---- */

static TESTFILES_UNUSED const char *jfind(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    return p ? p + strlen(pat) : NULL;
}

/* numbers of a (possibly nested) array value, flattened; the count (may exceed max), -1 if absent */
static TESTFILES_UNUSED int jnums(const char *line, const char *key, double *out, int max) {
    const char *p = jfind(line, key);
    if (!p) return -1;
    if (*p != '[') { out[0] = strtod(p, NULL); return 1; }
    int n = 0, depth = 0;
    do {
        if (*p == '[') { depth++; p++; }
        else if (*p == ']') { depth--; p++; }
        else if (*p == ',' || *p == ' ') p++;
        else {
            char *end;
            double v = strtod(p, &end);
            if (end == p) return -1;
            if (n < max) out[n] = v;
            n++;
            p = end;
        }
    } while (depth > 0 && *p);
    return n;
}

/* a string value (no escapes) into out; 1 when found */
static TESTFILES_UNUSED int jstr(const char *line, const char *key, char *out, size_t len) {
    const char *p = jfind(line, key);
    if (!p || *p != '"') return 0;
    const char *e = strchr(p + 1, '"');
    if (!e || (size_t)(e - p - 1) >= len) return 0;
    memcpy(out, p + 1, (size_t)(e - p - 1));
    out[e - p - 1] = '\0';
    return 1;
}

#endif
