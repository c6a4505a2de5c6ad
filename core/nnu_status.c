/* nnu_status.c: thread-local error message store (see nnu_status.h). */
#include "nnu_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];

nnu_status nnu_fail(nnu_status s, const char *file, int line, const char *fmt, ...) {
    const char *base = strrchr(file, '/');          /* keep messages short: basename only */
    int n = snprintf(last_error, sizeof last_error, "%s:%d: ", base ? base + 1 : file, line);
    if (n < 0 || (size_t)n >= sizeof last_error) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error + n, sizeof last_error - (size_t)n, fmt, ap);
    va_end(ap);
    return s;
}

const char *nnu_last_error(void) { return last_error; }

void nnu_clear_error(void) { last_error[0] = '\0'; }

const char *nnu_status_name(nnu_status s) {
    switch (s) {
    case NNU_STATUS_OK:               return "OK";
    case NNU_STATUS_ERR_ARG:          return "ERR_ARG";
    case NNU_STATUS_ERR_SHAPE:        return "ERR_SHAPE";
    case NNU_STATUS_ERR_OOM:          return "ERR_OOM";
    case NNU_STATUS_ERR_IO:           return "ERR_IO";
    case NNU_STATUS_ERR_FORMAT:       return "ERR_FORMAT";
    case NNU_STATUS_ERR_CUDA:         return "ERR_CUDA";
    case NNU_STATUS_ERR_CUDNN:        return "ERR_CUDNN";
    case NNU_STATUS_ERR_UNSUPPORTED:  return "ERR_UNSUPPORTED";
    case NNU_STATUS_ERR_INTERRUPTED:  return "ERR_INTERRUPTED";
    }
    return "ERR_UNKNOWN";
}
