/* nnu_net_io.c: network parameters <-> safetensors files.
 *
 * The container (layout, atomic write with fsync, validating reader, CRC) is
 * nnu_safetensors.c; this file maps the net's flat blocks onto tensors. Weights use
 * the PyTorch names of nnu_net.h, so `safetensors.torch.load_file` gives a state dict
 * for PlainConvUNet (without the duplicated `all_modules.*` / `decoder.encoder.*`
 * aliases). The SGD momentum is saved as "optimizer.momentum.<name>", Adam's state
 * (when allocated) as "optimizer.{exp_avg,exp_avg_sq,max_exp_avg_sq}.<name>", the step
 * count as metadata "sgd_steps", the whole-file CRC-32 as metadata "nnunet_crc32"
 * (checked on load when present: files written before it load unchecked). Blocks
 * follow each other in the data section, tensors in net order inside a block; the
 * training checkpoints (nnu_checkpoint.c) use the same names, so Net:load reads them.
 * nnu_net_load also reads PyTorch checkpoints (a zip: nnu_torch_ckpt.h), told apart by
 * the zip magic "PK\3\4" (a safetensors file starts with its header length). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_checkpoint.h"   /* NNU_CKPT_CRC_KEY */
#include "nnu_net.h"
#include "nnu_safetensors.h"
#include "nnu_torch_ckpt.h"

#define NAME_LEN 128   /* prefix (at most 25) + nnu_net_tensor_info.name (80) */

/* the blocks of a file: weights, SGD momentum and (when allocated) Adam's state */
enum { NBLOCKS = 5 };
static const char *const block_prefix[NBLOCKS] = {"", "optimizer.momentum.", "optimizer.exp_avg.",
                                                  "optimizer.exp_avg_sq.",
                                                  "optimizer.max_exp_avg_sq."};
static float *block_data(nnu_net *net, int b) {
    return b == 0 ? nnu_net_params(net) : b == 1 ? nnu_net_momentum(net)
                                                 : nnu_net_adam_state(net, b - 2);
}

nnu_status nnu_net_save(const nnu_net *net, const char *path) {
    return nnu_net_save_meta(net, path, 0, NULL, NULL);
}

nnu_status nnu_net_save_meta(const nnu_net *net, const char *path, int nmeta,
                             const char *const *keys, const char *const *values) {
    NNU_CHECK(nmeta >= 0 && nmeta < 1000, NNU_STATUS_ERR_ARG, "save '%s': %d metadata entries", path, nmeta);
    for (int i = 0; i < nmeta; i++)
        NNU_CHECK(strcmp(keys[i], "format") && strcmp(keys[i], "sgd_steps") && strcmp(keys[i], NNU_CKPT_CRC_KEY),
                  NNU_STATUS_ERR_ARG, "save '%s': metadata key '%s' is reserved", path, keys[i]);
    nnu_net *mnet = (nnu_net *)net;   /* only read through the block accessors */
    const int nt = nnu_net_num_tensors(net);
    const int64_t np = nnu_net_num_params(net);
    int nblk = 0, blk[NBLOCKS];
    for (int k = 0; k < NBLOCKS; k++)
        if (block_data(mnet, k)) blk[nblk++] = k;
    /* device memory is staged through one host buffer of all blocks; host memory is
     * written from where it lies */
    const int direct = nnu_net_backend(net)->mem->host_accessible;
    float *host = direct ? NULL : malloc((size_t)(np ? np : 1) * (size_t)nblk * sizeof(float));
    nnu_st_tensor *t = calloc((size_t)(nt * nblk + 1), sizeof *t);
    char (*names)[NAME_LEN] = calloc((size_t)(nt * nblk + 1), sizeof *names);
    const char **k2 = malloc((size_t)(nmeta + 2) * sizeof *k2), **v2 = malloc((size_t)(nmeta + 2) * sizeof *v2);
    nnu_status st = NNU_STATUS_OK;
    if ((!direct && !host) || !t || !names || !k2 || !v2) {
        st = NNU_FAIL(NNU_STATUS_ERR_OOM, "save '%s': out of memory", path);
        goto done;
    }
    for (int b = 0; b < nblk && st == NNU_STATUS_OK; b++) {
        const float *base = block_data(mnet, blk[b]);
        if (!direct) {
            st = nnu_net_read(net, base, host + (size_t)b * (size_t)np, np);
            base = host + (size_t)b * (size_t)np;
        }
        for (int i = 0; i < nt; i++) {
            const nnu_net_tensor_info *ti = nnu_net_tensor(net, i);
            nnu_st_tensor *e = &t[b * nt + i];
            snprintf(names[b * nt + i], NAME_LEN, "%s%s", block_prefix[blk[b]], ti->name);
            e->name = names[b * nt + i];
            strcpy(e->dtype, "F32");
            e->ndim = ti->ndim;
            for (int d = 0; d < ti->ndim; d++) e->shape[d] = ti->shape[d];
            e->data = base + ti->offset;
        }
    }
    if (st != NNU_STATUS_OK) goto done;
    char steps[16];
    snprintf(steps, sizeof steps, "%d", nnu_net_get_sgd_steps(net));
    k2[0] = "format";
    v2[0] = "nnunet";
    k2[1] = "sgd_steps";
    v2[1] = steps;
    for (int i = 0; i < nmeta; i++) {
        k2[i + 2] = keys[i];
        v2[i + 2] = values[i];
    }
    nnu_st_save_opts o = {.crc_key = NNU_CKPT_CRC_KEY};
    st = nnu_st_save(path, t, nt * nblk, k2, v2, nmeta + 2, &o);
done:
    free(host);
    free(t);
    free(names);
    free(k2);
    free(v2);
    return st;
}

/* appends n bytes to buf[*k..len) (NUL-terminated); 0 when they do not fit */
static int put(char *buf, size_t len, size_t *k, const char *p, size_t n) {
    if (*k + n >= len) return 0;
    memcpy(buf + *k, p, n);
    buf[*k += n] = 0;
    return 1;
}

/* s as a JSON string literal: quote, backslash and control characters escaped */
static int put_json_string(char *buf, size_t len, size_t *k, const char *s) {
    int ok = put(buf, len, k, "\"", 1);
    for (; ok && *s; s++) {
        char esc[8];
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c);
        else if (c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", c);
        else snprintf(esc, sizeof esc, "%c", c);
        ok = put(buf, len, k, esc, strlen(esc));
    }
    return ok && put(buf, len, k, "\"", 1);
}

/* The __metadata__ object re-encoded from the checked file (keys in file order). */
nnu_status nnu_net_read_metadata(const char *path, char *buf, size_t len) {
    NNU_CHECK(buf && len > 0, NNU_STATUS_ERR_ARG, "metadata of '%s': no buffer", path);
    nnu_st_file f;
    NNU_TRY(nnu_st_open_opt(path, "file", NNU_CKPT_CRC_KEY, 1, &f));
    size_t k = 0;
    buf[0] = 0;
    int ok = put(buf, len, &k, "{", 1);
    for (int i = 0; ok && i < f.nmeta; i++)
        ok = (!i || put(buf, len, &k, ",", 1)) && put_json_string(buf, len, &k, f.keys[i]) &&
             put(buf, len, &k, ":", 1) && put_json_string(buf, len, &k, f.values[i]);
    ok = ok && put(buf, len, &k, "}", 1);
    nnu_st_close(&f);
    NNU_CHECK(ok, NNU_STATUS_ERR_ARG, "'%s': metadata exceeds the buffer of %zu bytes", path, len);
    return NNU_STATUS_OK;
}

/* the file's entry of block b's tensor i, checked against the net's; *e = NULL when absent */
static nnu_status find_checked(const nnu_st_file *f, const nnu_net *net, int b, int i, const nnu_st_tensor **e) {
    const nnu_net_tensor_info *ti = nnu_net_tensor(net, i);
    char key[NAME_LEN];
    snprintf(key, sizeof key, "%s%s", block_prefix[b], ti->name);
    *e = nnu_st_find(f, key);
    if (!*e) return NNU_STATUS_OK;
    int same = (*e)->ndim == ti->ndim && !strcmp((*e)->dtype, "F32");
    for (int d = 0; same && d < ti->ndim; d++) same = (*e)->shape[d] == ti->shape[d];
    if (same) return NNU_STATUS_OK;
    char want[96], got[96];
    nnu_shape_str(ti->ndim, ti->shape, want, sizeof want);
    nnu_shape_str((*e)->ndim, (*e)->shape, got, sizeof got);
    return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "file '%s': tensor '%s' is %s %s, the network's is F32 %s "
                    "(architecture mismatch)", f->path, key, (*e)->dtype, got, want);
}

/* Checks every tensor first, so a mismatching file leaves the net untouched: the
 * weights must all be there; the momentum is restored when complete, else zeroed
 * with the step count (weights only: the optimizer starts afresh); Adam's state
 * when the file has it (then complete). Names the file does not know are ignored. */
nnu_status nnu_net_load(nnu_net *net, const char *path) {
    if (nnu_torch_is_zip(path) == 1) return nnu_torch_ckpt_load(net, path);
    nnu_st_file f;
    NNU_TRY(nnu_st_open_opt(path, "file", NNU_CKPT_CRC_KEY, 1, &f));
    const int nt = nnu_net_num_tensors(net);
    const int64_t np = nnu_net_num_params(net);
    const nnu_st_tensor **ent = calloc((size_t)(NBLOCKS * nt + 1), sizeof *ent);
    float *host = malloc((size_t)(np ? np : 1) * sizeof(float));   /* staging for the device */
    int have[NBLOCKS] = {0};
    nnu_status st = NNU_STATUS_OK;
    if (!ent || !host) { st = NNU_FAIL(NNU_STATUS_ERR_OOM, "load '%s': out of memory", path); goto done; }
    for (int b = 0; b < NBLOCKS && st == NNU_STATUS_OK; b++) {
        int n = 0;
        for (int i = 0; i < nt && st == NNU_STATUS_OK; i++) {
            st = find_checked(&f, net, b, i, &ent[b * nt + i]);
            n += ent[b * nt + i] != NULL;
        }
        if (st != NNU_STATUS_OK) break;
        have[b] = n == nt;
        if (n == nt || b == 1 || (b >= 2 && !ent[b * nt])) continue;   /* Adam: as its first tensor */
        for (int i = 0; i < nt; i++)
            if (!ent[b * nt + i]) {
                st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "file '%s': tensor '%s%s' is missing (the checkpoint "
                              "does not match the plan's architecture)", path, block_prefix[b],
                              nnu_net_tensor(net, i)->name);
                break;
            }
    }
    for (int b = 2; b < NBLOCKS && st == NNU_STATUS_OK; b++)
        if (have[b]) st = nnu_net_adam_alloc(net);
    for (int b = 0; b < NBLOCKS && st == NNU_STATUS_OK; b++) {
        if (!block_data(net, b) || (!have[b] && b != 1)) continue;
        if (have[b]) {
            for (int i = 0; i < nt && st == NNU_STATUS_OK; i++)
                st = nnu_st_read(&f, ent[b * nt + i], host + nnu_net_tensor(net, i)->offset);
        } else {
            memset(host, 0, (size_t)np * sizeof(float));
        }
        if (st == NNU_STATUS_OK) st = nnu_net_write(net, block_data(net, b), host, np);
    }
    if (st == NNU_STATUS_OK) {
        const char *m = nnu_st_meta(&f, "sgd_steps");
        long long steps = 1;
        if (m) sscanf(m, "%lld", &steps);
        nnu_net_set_sgd_steps(net, have[1] ? (int)steps : 0);
    }
done:
    free(ent);
    free(host);
    nnu_st_close(&f);
    return st;
}
