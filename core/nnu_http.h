/* nnu_http: downloading a file (a pretrained model's zip) with libcurl, for
 * `nnunet download_pretrained_model_by_url` (the reference's
 * nnUNetv2_download_pretrained_model_by_url).
 *
 * Any URL libcurl takes (https, http, ftp, file); redirects are followed; an HTTP
 * status >= 400 is an error. The bytes go to <dest>.part, which is fsynced and renamed
 * to dest only when the transfer is complete, so an interrupted or failed download
 * never leaves a partial dest (the .part is removed). A progress bar in MiB is shown
 * when `progress` is set and the server tells the size; Ctrl-C
 * (nnu_interrupt_requested) aborts the transfer with ERR_INTERRUPTED. */
#ifndef NNU_HTTP_H
#define NNU_HTTP_H

#include "nnu_status.h"

/* ERR_IO naming the URL and libcurl's reason (or the HTTP status) on failure. */
nnu_status nnu_http_download(const char *url, const char *dest, int progress);

#endif
