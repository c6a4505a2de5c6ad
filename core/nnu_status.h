/* nnu_status: the error model of the core (STYLE R14).
 *
 * Every fallible core function returns an nnu_status. On failure the message
 * (with file:line of the failing check) is stored in a thread-local buffer,
 * readable with nnu_last_error(); augmentation and preprocessing workers are
 * threads, so the buffer must be per thread. The core never exits, aborts or
 * longjmps: only the Lua binding turns a status into a Lua error (R15). */
#ifndef NNU_STATUS_H
#define NNU_STATUS_H

typedef enum nnu_status {
    NNU_STATUS_OK = 0,
    NNU_STATUS_ERR_ARG,         /* bad argument value */
    NNU_STATUS_ERR_SHAPE,       /* shapes/dtypes do not fit together */
    NNU_STATUS_ERR_OOM,         /* allocation failed */
    NNU_STATUS_ERR_IO,          /* file system error */
    NNU_STATUS_ERR_FORMAT,      /* a file's content is corrupt or unsupported */
    NNU_STATUS_ERR_CUDA,
    NNU_STATUS_ERR_CUDNN,
    NNU_STATUS_ERR_UNSUPPORTED, /* op or dtype not implemented on this backend */
    NNU_STATUS_ERR_INTERRUPTED  /* the user pressed Ctrl-C (see nnu_interrupt.h) */
} nnu_status;

/* Stores the formatted message (prefixed by file:line) and returns s. */
nnu_status nnu_fail(nnu_status s, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

const char *nnu_last_error(void);              /* thread-local, never NULL */
const char *nnu_status_name(nnu_status s);     /* "ERR_SHAPE", ... */
void        nnu_clear_error(void);

#define NNU_FAIL(s, ...)     nnu_fail((s), __FILE__, __LINE__, __VA_ARGS__)
#define NNU_CHECK(c, s, ...) do { if (!(c)) return NNU_FAIL((s), __VA_ARGS__); } while (0)
/* Propagates a failing status unchanged (the message is already stored). */
#define NNU_TRY(expr)        do { nnu_status st_ = (expr); if (st_ != NNU_STATUS_OK) return st_; } while (0)

#endif
