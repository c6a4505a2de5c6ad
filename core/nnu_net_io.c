/* nnu_net_io.c: network parameters <-> safetensors files.
 *
 * Format (huggingface safetensors): u64 little-endian header length, a JSON header
 * {"__metadata__": {...}, "<name>": {"dtype": "F32", "shape": [...],
 * "data_offsets": [begin, end]}, ...} padded with spaces to a multiple of 8, then
 * the raw little-endian data. Weights use the PyTorch names of nnu_net.h, so
 * `safetensors.torch.load_file` gives a state dict for PlainConvUNet (without the
 * duplicated `all_modules.*` / `decoder.encoder.*` aliases). The SGD momentum is
 * saved as "optimizer.momentum.<name>", Adam's state (when allocated) as
 * "optimizer.{exp_avg,exp_avg_sq,max_exp_avg_sq}.<name>", the step count as metadata
 * "sgd_steps". The flat blocks are in tensor order: one fwrite per block.
 * Written to "<path>.tmp" and renamed, so a crash never leaves a partial file. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_net.h"

/* appends to a growing string; returns 0 on OOM */
typedef struct sbuf { char *s; size_t len, cap; } sbuf;
static int sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return 0;
        if (b->s && b->len + (size_t)n < b->cap) { b->len += (size_t)n; return 1; }
        size_t cap = (b->cap + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) return 0;
        b->s = s;
        b->cap = cap;
    }
}

static int add_entries(sbuf *b, const nnu_net *net, const char *prefix, size_t base, int *first) {
    for (int i = 0; i < nnu_net_num_tensors(net); i++) {
        const nnu_net_tensor_info *t = nnu_net_tensor(net, i);
        if (!sb_printf(b, "%s\"%s%s\":{\"dtype\":\"F32\",\"shape\":[", *first ? "" : ",", prefix,
                       t->name)) return 0;
        *first = 0;
        for (int d = 0; d < t->ndim; d++)
            if (!sb_printf(b, "%s%lld", d ? "," : "", (long long)t->shape[d])) return 0;
        size_t beg = base + (size_t)t->offset * 4, end = beg + (size_t)t->numel * 4;
        if (!sb_printf(b, "],\"data_offsets\":[%zu,%zu]}", beg, end)) return 0;
    }
    return 1;
}

/* the blocks of a file: weights, SGD momentum and (when allocated) Adam's state */
enum { NBLOCKS = 5 };
static const char *const block_prefix[NBLOCKS] = {"", "optimizer.momentum.", "optimizer.exp_avg.",
                                                  "optimizer.exp_avg_sq.",
                                                  "optimizer.max_exp_avg_sq."};
static float *block_data(nnu_net *net, int b) {
    return b == 0 ? nnu_net_params(net) : b == 1 ? nnu_net_momentum(net)
                                                 : nnu_net_adam_state(net, b - 2);
}

/* appends s as a JSON string body (quotes and control characters escaped) */
static int sb_json_str(sbuf *b, const char *s) {
    int ok = 1;
    for (; ok && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') ok = sb_printf(b, "\\%c", c);
        else if (c < 0x20) ok = sb_printf(b, "\\u%04x", c);
        else ok = sb_printf(b, "%c", c);
    }
    return ok;
}

nnu_status nnu_net_save(const nnu_net *net, const char *path) {
    return nnu_net_save_meta(net, path, 0, NULL, NULL);
}

nnu_status nnu_net_save_meta(const nnu_net *net, const char *path, int nmeta,
                             const char *const *keys, const char *const *values) {
    nnu_net *mnet = (nnu_net *)net;   /* only read through the block accessors */
    const size_t nb = (size_t)nnu_net_num_params(net) * sizeof(float);
    sbuf b = {0};
    int first = 0, ok = sb_printf(&b, "{\"__metadata__\":{\"format\":\"nnunet\",\"sgd_steps\":\"%d\"",
                                  nnu_net_get_sgd_steps(net));
    for (int i = 0; ok && i < nmeta; i++) {
        NNU_CHECK(strcmp(keys[i], "format") && strcmp(keys[i], "sgd_steps"), NNU_STATUS_ERR_ARG,
                  "save: metadata key '%s' is reserved", keys[i]);
        ok = sb_printf(&b, ",\"") && sb_json_str(&b, keys[i]) && sb_printf(&b, "\":\"") &&
             sb_json_str(&b, values[i]) && sb_printf(&b, "\"");
    }
    ok = ok && sb_printf(&b, "}");
    size_t base = 0;
    for (int k = 0; k < NBLOCKS && ok; k++) {
        if (!block_data(mnet, k)) continue;
        ok = add_entries(&b, net, block_prefix[k], base, &first);
        base += nb;
    }
    ok = ok && sb_printf(&b, "}");
    while (ok && b.len % 8) ok = sb_printf(&b, " ");
    if (!ok) { free(b.s); return NNU_FAIL(NNU_STATUS_ERR_OOM, "save: header"); }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        free(b.s);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)b.len >> (8 * i));
    int w = fwrite(len8, 1, 8, f) == 8 && fwrite(b.s, 1, b.len, f) == b.len;
    /* blocks live in the backend's memory: staged through one host buffer */
    float *host = malloc(nb ? nb : 1);
    w = w && host;
    for (int k = 0; k < NBLOCKS && w; k++)
        if (block_data(mnet, k))
            w = nnu_net_read(net, block_data(mnet, k), host, nnu_net_num_params(net)) ==
                    NNU_STATUS_OK && fwrite(host, 1, nb, f) == nb;
    free(host);
    free(b.s);
    w = (fclose(f) == 0) && w;
    if (!w) {
        remove(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return NNU_FAIL(NNU_STATUS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path,
                        strerror(errno));
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_net_read_metadata(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "rb");
    NNU_CHECK(f, NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    unsigned char len8[8];
    uint64_t hl = 0;
    int ok = fread(len8, 1, 8, f) == 8;
    for (int i = 0; ok && i < 8; i++) hl |= (uint64_t)len8[i] << (8 * i);
    char *hdr = ok && hl > 0 && hl <= (64u << 20) ? malloc(hl + 1) : NULL;
    ok = hdr && fread(hdr, 1, hl, f) == hl;
    fclose(f);
    if (!ok) {
        free(hdr);
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': not a safetensors file", path);
    }
    hdr[hl] = 0;
    /* the metadata object holds only strings: it ends at the first unescaped '}' */
    const char *m = strstr(hdr, "\"__metadata__\"");
    const char *o = m ? strchr(m, '{') : NULL, *e = o;
    for (int esc = 0, str = 0; e && *e; e++) {
        if (esc) { esc = 0; continue; }
        if (*e == '\\') esc = 1;
        else if (*e == '"') str = !str;
        else if (*e == '}' && !str) break;
    }
    if (!o || !e || !*e) {
        free(hdr);
        snprintf(buf, len, "{}");
        return NNU_STATUS_OK;
    }
    size_t n = (size_t)(e - o) + 1;
    if (n >= len) {
        free(hdr);
        return NNU_FAIL(NNU_STATUS_ERR_ARG, "'%s': metadata of %zu bytes exceeds the buffer", path, n);
    }
    memcpy(buf, o, n);
    buf[n] = 0;
    free(hdr);
    return NNU_STATUS_OK;
}

/* Finds "<key>":{...} in the header; reads its dtype, shape and offsets. */
static int find_entry(const char *hdr, const char *key, char *dtype, int *ndim, int64_t *shape,
                      int64_t *beg, int64_t *end) {
    char pat[256];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(hdr, pat);
    if (!p) return 0;
    const char *o = strchr(p + strlen(pat), '{'), *e = o ? strchr(o, '}') : NULL;
    if (!o || !e) return 0;
    const char *d = strstr(o, "\"dtype\""), *s = strstr(o, "\"shape\""),
               *f = strstr(o, "\"data_offsets\"");
    if (!d || !s || !f || d > e || s > e || f > e) return 0;
    if (sscanf(d, "\"dtype\" : \"%7[A-Z0-9]\"", dtype) != 1 &&
        sscanf(d, "\"dtype\":\"%7[A-Z0-9]\"", dtype) != 1) return 0;
    const char *q = strchr(s, '[');
    *ndim = 0;
    for (q++; *q && *q != ']' && *ndim < 5;) {
        char *nx;
        long long v = strtoll(q, &nx, 10);
        if (nx == q) { q++; continue; }
        shape[(*ndim)++] = v;
        q = nx;
    }
    q = strchr(f, '[');
    return q && sscanf(q, "[ %lld , %lld ]", (long long *)beg, (long long *)end) == 2;
}

nnu_status nnu_net_load(nnu_net *net, const char *path) {
    FILE *f = fopen(path, "rb");
    NNU_CHECK(f, NNU_STATUS_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    unsigned char len8[8];
    uint64_t hl = 0;
    if (fread(len8, 1, 8, f) != 8) { fclose(f); return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': truncated", path); }
    for (int i = 0; i < 8; i++) hl |= (uint64_t)len8[i] << (8 * i);
    if (hl == 0 || hl > (64u << 20)) {
        fclose(f);
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': not a safetensors file (header %llu bytes)",
                        path, (unsigned long long)hl);
    }
    char *hdr = malloc(hl + 1);
    if (!hdr || fread(hdr, 1, hl, f) != hl) {
        free(hdr);
        fclose(f);
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': truncated header", path);
    }
    hdr[hl] = 0;
    nnu_status st = NNU_STATUS_OK;
    const int64_t np = nnu_net_num_params(net);
    float *host = malloc((size_t)(np ? np : 1) * sizeof(float));   /* staging for the device */
    if (!host) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "load: staging buffer");
    for (int pass = 0; pass < NBLOCKS && st == NNU_STATUS_OK; pass++) {
        if (pass >= 2) {   /* Adam state: only when the file has it */
            char probe[160];
            snprintf(probe, sizeof probe, "\"%s%s\"", block_prefix[pass], nnu_net_tensor(net, 0)->name);
            if (!strstr(hdr, probe)) continue;
            if ((st = nnu_net_adam_alloc(net)) != NNU_STATUS_OK) break;
        }
        float *dst = host;
        int complete = 1;
        for (int i = 0; i < nnu_net_num_tensors(net); i++) {
            const nnu_net_tensor_info *t = nnu_net_tensor(net, i);
            char key[160], dtype[8] = "";
            int nd;
            int64_t shape[5], beg, end;
            snprintf(key, sizeof key, "%s%s", block_prefix[pass], t->name);
            if (!find_entry(hdr, key, dtype, &nd, shape, &beg, &end)) {
                if (pass == 1) {   /* weights only: the optimizer starts afresh */
                    memset(dst, 0, (size_t)np * sizeof(float));
                    nnu_net_set_sgd_steps(net, 0);
                    break;
                }
                complete = 0;
                st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': tensor '%s' is missing (the "
                              "checkpoint does not match the plan's architecture)", path, key);
                break;
            }
            int same = nd == t->ndim && !strcmp(dtype, "F32") && end - beg == t->numel * 4;
            for (int d = 0; same && d < nd; d++) same = shape[d] == t->shape[d];
            if (!same) {
                char want[64] = "", got[64] = "";
                for (int d = 0; d < t->ndim; d++)
                    snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld",
                             d ? "," : "", (long long)t->shape[d]);
                for (int d = 0; d < nd; d++)
                    snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld",
                             d ? "," : "", (long long)shape[d]);
                st = NNU_FAIL(NNU_STATUS_ERR_SHAPE, "'%s': tensor '%s' is %s [%s], the "
                              "network's is F32 [%s] (architecture mismatch)", path, key, dtype,
                              got, want);
                break;
            }
            if (fseek(f, (long)(8 + hl + (uint64_t)beg), SEEK_SET) != 0 ||
                fread(dst + t->offset, 4, (size_t)t->numel, f) != (size_t)t->numel) {
                st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "'%s': truncated data of '%s'", path, key);
                break;
            }
        }
        if (st == NNU_STATUS_OK && complete)
            st = nnu_net_write(net, block_data(net, pass), host, np);
    }
    free(host);
    if (st == NNU_STATUS_OK && strstr(hdr, "\"optimizer.momentum.")) {
        const char *m = strstr(hdr, "\"sgd_steps\"");
        long long steps = 1;
        if (m) sscanf(m, "\"sgd_steps\":\"%lld\"", &steps);
        nnu_net_set_sgd_steps(net, (int)steps);
    }
    free(hdr);
    fclose(f);
    return st;
}
