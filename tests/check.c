/* check.c: see check.h. */
#include "check.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

int check_failures = 0, check_count = 0;

void check_fails_(nnu_status got, nnu_status want, const char *text, const char *expr,
                  const char *file, int line) {
    check_count++;
    const char *msg = nnu_last_error();
    if (got != want || (text && !strstr(msg, text))) {
        check_failures++;
        fprintf(stderr, "%s:%d: FAIL: %s -> %s '%s', wanted %s containing '%s'\n", file, line, expr,
                nnu_status_name(got), msg, nnu_status_name(want), text ? text : "");
    }
}

void check_close_(double got, double ref, double atol, double rtol, const char *expr,
                  const char *file, int line) {
    check_count++;
    int ok = (isnan(got) && isnan(ref)) || fabs(got - ref) <= atol + rtol * fabs(ref);
    if (!ok) {
        check_failures++;
        fprintf(stderr, "%s:%d: FAIL: %s = %.17g, reference %.17g (diff %.3g, atol %g, rtol %g)\n", file,
                line, expr, got, ref, fabs(got - ref), atol, rtol);
    }
}

const char *check_shared_path(const char *sub, char *buf, size_t len) {
    struct stat s;
    snprintf(buf, len, "../shared/data/%s", sub);
    if (stat(buf, &s) == 0) return buf;
    fprintf(stderr, "SKIP: %s not found (the shared data folder sits beside the checkout in CI)\n", buf);
    return NULL;
}

int check_report(void) {
    fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}
