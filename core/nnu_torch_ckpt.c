/* nnu_torch_ckpt.c: reference nnU-Net checkpoints (torch.save files) -> an nnu_net and
 * the checkpoint's metadata (rules in nnu_torch_ckpt.h). The container is
 * nnu_torch_read.c; writing is nnu_torch_write.c. Only the public nnu_net API is used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_torch_ckpt.h"

/* the state dict of a checkpoint: root['network_weights'], or root itself when its
 * values are tensors (a bare torch.save(net.state_dict())) */
const nnu_pk *nnu_torch_state_dict(const nnu_pk *root) {
    const nnu_pk *w = nnu_pk_get(root, "network_weights");
    if (nnu_pk_has_entries(w)) return w;
    if (!nnu_pk_has_entries(root) || root->nkv == 0) return NULL;
    for (int k = 0; k < root->nkv; k++)
        if (!nnu_torch_is_tensor(root->vals[k])) return NULL;
    return root;
}

static void copy_str(char *dst, size_t len, const nnu_pk *v) {
    dst[0] = 0;
    if (v && v->type == NNU_PK_STR) snprintf(dst, len, "%s", v->s);
}

static nnu_status fill_info(nnu_torch_file *f, nnu_torch_ckpt_info *info) {
    const nnu_pk *root = nnu_torch_root(f);
    memset(info, 0, sizeof *info);
    info->current_epoch = -1;
    info->n_mirror = -1;
    copy_str(info->trainer_name, sizeof info->trainer_name, nnu_pk_get(root, "trainer_name"));
    copy_str(info->configuration, sizeof info->configuration,
             nnu_pk_get(nnu_pk_get(root, "init_args"), "configuration"));
    const nnu_pk *e = nnu_pk_get(root, "current_epoch");
    if (e && e->type == NNU_PK_INT && !e->big) info->current_epoch = e->i;
    const nnu_pk *m = nnu_pk_get(root, "inference_allowed_mirroring_axes");
    if (m && (m->type == NNU_PK_TUPLE || m->type == NNU_PK_LIST)) {
        NNU_CHECK(m->n <= NNU_TORCH_MAX_DIMS, NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': %d mirroring axes",
                  nnu_torch_path(f), m->n);
        for (int k = 0; k < m->n; k++) {
            const nnu_pk *a = m->items[k];
            NNU_CHECK(a->type == NNU_PK_INT && !a->big && a->i >= 0 && a->i < NNU_TORCH_MAX_DIMS,
                      NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': inference_allowed_mirroring_axes holds a "
                      "%s that is not an axis", nnu_torch_path(f), nnu_pk_type_name(a->type));
            info->mirror_axes[k] = (int)a->i;
        }
        info->n_mirror = m->n;
    }
    const nnu_pk *sd = nnu_torch_state_dict(root);
    if (!sd) return NNU_STATUS_OK;
    info->keys = calloc((size_t)(sd->nkv > 0 ? sd->nkv : 0) + 1, sizeof *info->keys);
    NNU_CHECK(info->keys, NNU_STATUS_ERR_OOM, "torch checkpoint '%s': out of memory", nnu_torch_path(f));
    for (int k = 0; k < sd->nkv; k++) {
        const nnu_pk *key = sd->keys[k];
        if (key->type != NNU_PK_STR) continue;
        info->keys[info->nkeys] = strdup(key->s);
        NNU_CHECK(info->keys[info->nkeys], NNU_STATUS_ERR_OOM, "torch checkpoint '%s': out of memory",
                  nnu_torch_path(f));
        info->nkeys++;
    }
    return NNU_STATUS_OK;
}

void nnu_torch_ckpt_info_free(nnu_torch_ckpt_info *info) {
    if (!info) return;
    for (int k = 0; k < info->nkeys; k++) free(info->keys[k]);
    free(info->keys);
    memset(info, 0, sizeof *info);
}

nnu_status nnu_torch_ckpt_info_read(const char *path, nnu_torch_ckpt_info *info) {
    memset(info, 0, sizeof *info);
    nnu_torch_file *f;
    NNU_TRY(nnu_torch_open(path, &f));
    nnu_status st = fill_info(f, info);
    if (st != NNU_STATUS_OK) nnu_torch_ckpt_info_free(info);
    nnu_torch_close(f);
    return st;
}

/* ------------------------------------------------------------------ loading */

static int starts(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* an alias of another tensor in the reference's state dict: ConvDropoutNormReLU keeps
 * its conv and norm also in `all_modules`, UNetDecoder keeps the encoder as `encoder` */
static int is_alias(const char *name) {
    return strstr(name, ".all_modules.") != NULL || starts(name, "decoder.encoder.");
}

int nnu_torch_key_to_tensor(const nnu_net *net, const char *key, const char **name) {
    for (;;) {
        if (starts(key, "_orig_mod.")) { key += 10; continue; }
        int i = nnu_net_find_tensor(net, key);
        if (i < 0 && starts(key, "module.")) { key += 7; continue; }
        *name = key;
        return i;
    }
}

/* maps every net tensor to its entry of sd (ent[i]) and checks names and shapes */
static nnu_status match(const nnu_net *net, const nnu_torch_file *f, const nnu_pk *sd, int *ent,
                        nnu_torch_tensor *desc) {
    const char *path = nnu_torch_path(f);
    const int nt = nnu_net_num_tensors(net);
    for (int i = 0; i < nt; i++) ent[i] = -1;
    char extra[512] = "";
    int nextra = 0;
    for (int k = 0; k < sd->nkv; k++) {
        NNU_CHECK(sd->keys[k]->type == NNU_PK_STR, NNU_STATUS_ERR_FORMAT,
                  "torch checkpoint '%s': a state-dict key is a %s", path, nnu_pk_type_name(sd->keys[k]->type));
        const char *name;
        int i = nnu_torch_key_to_tensor(net, sd->keys[k]->s, &name);
        if (i < 0) {
            if (is_alias(name)) continue;
            if (nextra++ < 3)
                snprintf(extra + strlen(extra), sizeof extra - strlen(extra), "%s'%s'", nextra > 1 ? ", " : "",
                         sd->keys[k]->s);
            continue;
        }
        NNU_CHECK(ent[i] < 0, NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': tensor '%s' appears twice ('%s' and "
                  "'%s')", path, name, sd->keys[ent[i]]->s, sd->keys[k]->s);
        ent[i] = k;
    }
    if (nextra)
        return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': %d key%s not in the network: %s%s (the "
                        "checkpoint is not this plan's architecture, or not a PlainConvUNet)", path, nextra,
                        nextra > 1 ? "s" : "", extra, nextra > 3 ? ", ..." : "");
    for (int i = 0; i < nt; i++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, i);
        NNU_CHECK(ent[i] >= 0, NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': tensor '%s' is missing (the "
                  "checkpoint does not match the plan's architecture)", path, ti->name);
        NNU_TRY(nnu_torch_tensor_of(f, sd->vals[ent[i]], ti->name, &desc[i]));
        int same = desc[i].ndim == ti->ndim;
        for (int d = 0; same && d < ti->ndim; d++) same = desc[i].shape[d] == ti->shape[d];
        if (!same) {
            char got[128], want[128];
            nnu_shape_str(desc[i].ndim, desc[i].shape, got, sizeof got);
            nnu_shape_str(ti->ndim, ti->shape, want, sizeof want);
            return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "torch checkpoint '%s': tensor '%s' is %s, the network's is %s "
                            "(the checkpoint does not match the plan's architecture)", path, ti->name, got, want);
        }
    }
    return NNU_STATUS_OK;
}

nnu_status nnu_torch_ckpt_load_file(nnu_net *net, nnu_torch_file *f, nnu_torch_ckpt_info *info) {
    const char *path = nnu_torch_path(f);
    const nnu_pk *sd = nnu_torch_state_dict(nnu_torch_root(f));
    NNU_CHECK(sd, NNU_STATUS_ERR_FORMAT, "torch checkpoint '%s': no state dict (neither 'network_weights' nor "
              "a dict of tensors; the file holds a %s)", path, nnu_pk_type_name(nnu_torch_root(f)->type));
    const int nt = nnu_net_num_tensors(net);
    const int64_t np = nnu_net_num_params(net);
    int *ent = malloc((size_t)(nt + 1) * sizeof *ent);
    nnu_torch_tensor *desc = malloc((size_t)(nt + 1) * sizeof *desc);
    float *host = malloc((size_t)(np ? np : 1) * sizeof *host);
    nnu_status st = NNU_STATUS_OK;
    if (!ent || !desc || !host) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "torch checkpoint '%s': out of memory", path);
    if (st == NNU_STATUS_OK) st = match(net, f, sd, ent, desc);
    for (int i = 0; i < nt && st == NNU_STATUS_OK; i++)
        st = nnu_torch_tensor_read(f, &desc[i], nnu_net_tensor(net, i)->name, host + nnu_net_tensor(net, i)->offset);
    if (st == NNU_STATUS_OK && info) st = fill_info(f, info);
    /* every check passed: now the net changes (weights, and a fresh optimizer) */
    if (st == NNU_STATUS_OK) st = nnu_net_write(net, nnu_net_params(net), host, np);
    if (st == NNU_STATUS_OK && nnu_net_momentum(net)) {
        memset(host, 0, (size_t)np * sizeof *host);
        st = nnu_net_write(net, nnu_net_momentum(net), host, np);
    }
    if (st == NNU_STATUS_OK) nnu_net_set_sgd_steps(net, 0);
    free(ent);
    free(desc);
    free(host);
    return st;
}

nnu_status nnu_torch_ckpt_load(nnu_net *net, const char *path) {
    nnu_torch_file *f;
    NNU_TRY(nnu_torch_open(path, &f));
    nnu_status st = nnu_torch_ckpt_load_file(net, f, NULL);
    nnu_torch_close(f);
    return st;
}
