/* nnu_http.c: nnu_http.h over libcurl's easy interface. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnu_http.h"
#include "nnu_interrupt.h"
#include "nnu_progress.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code = CURLE_OK;
static void curl_init(void) { curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct transfer {
    FILE *out;
    int write_failed;
    int want_bar;
    nnu_progress *bar;          /* created once the size is known */
    int64_t mib_done;
    int interrupted;
} transfer;

static size_t on_data(char *p, size_t size, size_t n, void *ctx) {
    transfer *t = ctx;
    size_t bytes = size * n;
    if (fwrite(p, 1, bytes, t->out) != bytes) {
        t->write_failed = 1;
        return 0;               /* makes curl stop with CURLE_WRITE_ERROR */
    }
    return bytes;
}

/* progress in MiB; a non-zero return aborts the transfer (Ctrl-C) */
static int on_progress(void *ctx, curl_off_t total, curl_off_t now, curl_off_t ut, curl_off_t un) {
    (void)ut, (void)un;
    transfer *t = ctx;
    if (nnu_interrupt_requested()) {
        t->interrupted = 1;
        return 1;
    }
    if (t->want_bar && !t->bar && total > 0 &&
        nnu_progress_new("download (MiB)", (int64_t)((total + (1 << 20) - 1) >> 20), &t->bar) != NNU_STATUS_OK)
        t->bar = NULL;          /* no bar is no error */
    if (t->bar) {
        int64_t mib = (int64_t)(now >> 20);
        if (mib > t->mib_done) {
            nnu_progress_add(t->bar, mib - t->mib_done);
            t->mib_done = mib;
        }
    }
    return 0;
}

nnu_status nnu_http_download(const char *url, const char *dest, int progress) {
    NNU_CHECK(url && dest, NNU_STATUS_ERR_ARG, "download: NULL argument");
    pthread_once(&curl_once, curl_init);
    NNU_CHECK(curl_init_code == CURLE_OK, NNU_STATUS_ERR_IO, "download '%s': libcurl: %s", url,
              curl_easy_strerror(curl_init_code));
    size_t n = strlen(dest) + 6;
    char *part = malloc(n);
    NNU_CHECK(part, NNU_STATUS_ERR_OOM, "download '%s': out of memory", url);
    snprintf(part, n, "%s.part", dest);
    transfer t = {0};
    t.want_bar = progress;
    t.out = fopen(part, "wb");
    if (!t.out) {
        nnu_status st = NNU_FAIL(NNU_STATUS_ERR_IO, "download '%s': cannot write '%s'", url, part);
        free(part);
        return st;
    }
    CURL *c = curl_easy_init();
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode rc = CURLE_FAILED_INIT;
    long http = 0;
    if (c) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);        /* HTTP >= 400 is an error */
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "nnunet");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
        rc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
        curl_easy_cleanup(c);
    }
    if (t.bar) {
        if (rc == CURLE_OK) nnu_progress_finish(t.bar);
        nnu_progress_free(t.bar);
    }
    int closed = fflush(t.out) == 0 && fsync(fileno(t.out)) == 0;
    closed = fclose(t.out) == 0 && closed;
    nnu_status st = NNU_STATUS_OK;
    if (t.interrupted)
        st = NNU_FAIL(NNU_STATUS_ERR_INTERRUPTED, "download '%s' interrupted", url);
    else if (t.write_failed || (rc == CURLE_OK && !closed))
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "download '%s': cannot write '%s' (disk full?)", url, part);
    else if (rc != CURLE_OK && http >= 400)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "download '%s': the server answered HTTP %ld", url, http);
    else if (rc != CURLE_OK)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "download '%s': %s", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    else if (rename(part, dest) != 0)
        st = NNU_FAIL(NNU_STATUS_ERR_IO, "download '%s': cannot rename '%s' to '%s'", url, part, dest);
    if (st != NNU_STATUS_OK) remove(part);
    free(part);
    return st;
}
