/* check.h: the tiny assertion kit of the C tests (STYLE R26, R28).
 * CHECK records a failure and goes on; tests end with `return check_report();`
 * so the exit code reflects every failed check. CHECK_CLOSE compares with
 * |a - b| <= atol + rtol * |ref| and prints both values. */
#ifndef CHECK_H
#define CHECK_H

#include <stdio.h>

#include "nnu_status.h"

extern int check_failures, check_count;

#define CHECK(cond, ...) do { check_count++; if (!(cond)) { check_failures++; \
    fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); \
    fputc('\n', stderr); } } while (0)
/* a core call that must succeed */
#define CHECK_OK(expr) do { nnu_status st_ = (expr); CHECK(st_ == NNU_STATUS_OK, "%s -> %s: %s", \
    #expr, nnu_status_name(st_), nnu_last_error()); } while (0)
/* a core call that must fail with status s and a message containing text */
#define CHECK_FAILS(expr, s, text) check_fails_((expr), (s), (text), #expr, __FILE__, __LINE__)
#define CHECK_CLOSE(got, ref, atol, rtol) check_close_((double)(got), (double)(ref), (atol), (rtol), \
    #got, __FILE__, __LINE__)

void check_fails_(nnu_status got, nnu_status want, const char *text, const char *expr,
                  const char *file, int line);
void check_close_(double got, double ref, double atol, double rtol, const char *expr,
                  const char *file, int line);
/* "../shared/data/<sub>" if present, else prints SKIP and returns NULL */
const char *check_shared_path(const char *sub, char *buf, size_t len);
int  check_report(void);   /* prints the summary; returns the exit code */

#endif
