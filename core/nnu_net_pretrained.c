/* nnu_net_pretrained.c: nnu_net_load_pretrained (nnu_net.h), the reference's
 * load_pretrained_weights (nnunetv2/run/load_pretrained_weights.py) for
 * `nnunet train -pretrained_weights`.
 *
 * The reference's rule: every tensor of the network whose name does not contain
 * ".seg_layers." must be in the pretrained state dict with the same shape (else an
 * error naming it); those are copied, the segmentation heads keep their fresh
 * initialisation (the new dataset may have other labels), and keys of the file that
 * the network lacks are ignored. Sources: this program's checkpoints (safetensors: the
 * tensors named as the network's, F32) and PyTorch checkpoints (the state dict of
 * nnu_torch_state_dict, keys matched by nnu_torch_key_to_tensor as the checkpoint
 * loader matches them). Every check happens before the network
 * changes, so a failure leaves it as it was. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnu_checkpoint.h"   /* NNU_CKPT_CRC_KEY */
#include "nnu_net.h"
#include "nnu_safetensors.h"
#include "nnu_torch_ckpt.h"

static nnu_status shape_mismatch(const char *path, const nnu_net_tensor_info *ti, int ndim,
                                 const int64_t *shape) {
    char got[128], want[128];
    nnu_shape_str(ndim, shape, got, sizeof got);
    nnu_shape_str(ti->ndim, ti->shape, want, sizeof want);
    return NNU_FAIL(NNU_STATUS_ERR_SHAPE, "pretrained weights '%s': tensor '%s' is %s there but %s in this "
                    "network: the pretrained model does not match this network's architecture", path, ti->name,
                    got, want);
}

static nnu_status missing(const char *path, const char *name) {
    return NNU_FAIL(NNU_STATUS_ERR_FORMAT, "pretrained weights '%s': tensor '%s' is missing: the pretrained model "
                    "does not match this network's architecture", path, name);
}

static int same_shape(const nnu_net_tensor_info *ti, int ndim, const int64_t *shape) {
    if (ndim != ti->ndim) return 0;
    for (int d = 0; d < ndim; d++)
        if (shape[d] != ti->shape[d]) return 0;
    return 1;
}

/* the tensors of a PyTorch checkpoint into host (the net's flat layout) */
static nnu_status from_torch(const nnu_net *net, const char *path, const char *skip, float *host) {
    nnu_torch_file *f;
    NNU_TRY(nnu_torch_open(path, &f));
    const int nt = nnu_net_num_tensors(net);
    nnu_status st = NNU_STATUS_OK;
    const nnu_pk *sd = nnu_torch_state_dict(nnu_torch_root(f));
    int *ent = malloc((size_t)(nt + 1) * sizeof *ent);   /* net tensor -> state-dict entry */
    if (!ent) st = NNU_FAIL(NNU_STATUS_ERR_OOM, "pretrained weights '%s': out of memory", path);
    else if (!sd) st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "pretrained weights '%s': no state dict (neither "
                                "'network_weights' nor a dict of tensors)", path);
    for (int i = 0; st == NNU_STATUS_OK && i < nt; i++) ent[i] = -1;
    for (int k = 0; st == NNU_STATUS_OK && k < sd->nkv; k++) {   /* keys the net lacks: ignored */
        const char *name;
        int i = sd->keys[k]->type == NNU_PK_STR ? nnu_torch_key_to_tensor(net, sd->keys[k]->s, &name) : -1;
        if (i >= 0) ent[i] = k;
    }
    for (int i = 0; st == NNU_STATUS_OK && i < nt; i++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, i);
        if (strstr(ti->name, skip)) continue;
        if (ent[i] < 0) { st = missing(path, ti->name); break; }
        nnu_torch_tensor t;
        st = nnu_torch_tensor_of(f, sd->vals[ent[i]], ti->name, &t);
        if (st == NNU_STATUS_OK && !same_shape(ti, t.ndim, t.shape)) st = shape_mismatch(path, ti, t.ndim, t.shape);
        if (st == NNU_STATUS_OK) st = nnu_torch_tensor_read(f, &t, ti->name, host + ti->offset);
    }
    free(ent);
    nnu_torch_close(f);
    return st;
}

/* the tensors of one of our safetensors checkpoints into host */
static nnu_status from_safetensors(const nnu_net *net, const char *path, const char *skip, float *host) {
    nnu_st_file f;
    NNU_TRY(nnu_st_open_opt(path, "pretrained weights", NNU_CKPT_CRC_KEY, 1, &f));
    nnu_status st = NNU_STATUS_OK;
    for (int i = 0; st == NNU_STATUS_OK && i < nnu_net_num_tensors(net); i++) {
        const nnu_net_tensor_info *ti = nnu_net_tensor(net, i);
        if (strstr(ti->name, skip)) continue;
        const nnu_st_tensor *t = nnu_st_find(&f, ti->name);
        if (!t) { st = missing(path, ti->name); break; }
        if (!same_shape(ti, t->ndim, t->shape)) { st = shape_mismatch(path, ti, t->ndim, t->shape); break; }
        if (strcmp(t->dtype, "F32")) {
            st = NNU_FAIL(NNU_STATUS_ERR_FORMAT, "pretrained weights '%s': tensor '%s' is %s, expected F32", path,
                          ti->name, t->dtype);
            break;
        }
        st = nnu_st_read(&f, t, host + ti->offset);
    }
    nnu_st_close(&f);
    return st;
}

nnu_status nnu_net_load_pretrained(nnu_net *net, const char *path, const char *skip, int *n_loaded) {
    NNU_CHECK(net && path, NNU_STATUS_ERR_ARG, "load_pretrained: NULL argument");
    if (!skip || !*skip) skip = "\x01";   /* matches no name: nothing skipped */
    const int64_t np = nnu_net_num_params(net);
    float *host = malloc((size_t)(np ? np : 1) * sizeof *host);
    NNU_CHECK(host, NNU_STATUS_ERR_OOM, "pretrained weights '%s': out of memory", path);
    /* start from the current weights: the skipped tensors keep them */
    nnu_status st = nnu_net_read(net, nnu_net_params(net), host, np);
    int zip = nnu_torch_is_zip(path);
    if (st == NNU_STATUS_OK && zip < 0) st = NNU_FAIL(NNU_STATUS_ERR_IO, "cannot open pretrained weights '%s'", path);
    if (st == NNU_STATUS_OK)
        st = zip ? from_torch(net, path, skip, host) : from_safetensors(net, path, skip, host);
    if (st == NNU_STATUS_OK) st = nnu_net_write(net, nnu_net_params(net), host, np);
    free(host);
    if (st == NNU_STATUS_OK && n_loaded) {
        int n = 0;
        for (int i = 0; i < nnu_net_num_tensors(net); i++) n += strstr(nnu_net_tensor(net, i)->name, skip) == NULL;
        *n_loaded = n;
    }
    return st;
}
