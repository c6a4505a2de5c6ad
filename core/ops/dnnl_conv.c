/* dnnl_conv.c: oneDNN (2.6 C API) convolution and deconvolution primitives with
 * a per-shape cache (see dnnl_conv.h). 2-D geometry (in[0] = 1, kernel[0] =
 * stride[0] = 1) uses 4-D descriptors so oneDNN picks its 2-D kernels.
 * Precision bf16 (the "cpu:bf16" table): inputs are converted to bf16 by a reorder
 * into a shared buffer, outputs and accumulation stay f32 (AVX512-BF16 kernels). */
#include "dnnl_conv.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops_cpu.h"

#define DN(call) do { dnnl_status_t s_ = (call); if (s_ != dnnl_success) \
    return NNU_FAIL(NNU_STATUS_ERR_UNSUPPORTED, "oneDNN %s: %s", #call, dnnl_status2str(s_)); \
    } while (0)

enum { KEY_LEN = 24 };

typedef struct conv_entry {
    int64_t key[KEY_LEN];
    dnnl_primitive_t prim;
    dnnl_primitive_desc_t pd;       /* kept: the forward one is the hint of the backward */
    dnnl_memory_desc_t wmd;         /* weights layout the primitive uses */
    dnnl_primitive_t wreorder;      /* plain -> wmd (fwd, bwd data); wmd -> plain += (bwd w) */
    float *wbuf;                    /* weights in wmd (NULL: plain is used directly) */
    float *bbuf;                    /* bwd weights: bias gradient before accumulation */
    dnnl_memory_t m_a, m_b, m_out, m_w, m_wplain, m_bias;
    /* bf16 entries: f32 -> bf16 conversions of the inputs a (and b for the weight
     * gradient) into the shared buffers cvt_buf[0], cvt_buf[1] */
    dnnl_primitive_t cvt[2];
    dnnl_memory_t m_f32[2], m_bf16[2];
} conv_entry;

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static conv_entry **cache;
static int cache_len, cache_cap;
/* bf16 copies of the current op's inputs, shared by all entries (ops run one at a
 * time); grown when an entry needing more is built, i.e. in the first iteration */
static void *cvt_buf[2];
static size_t cvt_cap[2];

static void make_key(int dir, const nnu_conv_params *p, int bf16, int64_t *k) {
    memset(k, 0, KEY_LEN * sizeof *k);
    int i = 0;
    k[i++] = dir;
    k[i++] = bf16; k[i++] = p->transposed; k[i++] = p->n; k[i++] = p->c_in; k[i++] = p->c_out;
    for (int a = 0; a < 3; a++) { k[i++] = p->in[a]; k[i++] = p->kernel[a]; k[i++] = p->stride[a]; }
    k[i++] = p->cblk_in; k[i++] = p->cblk_out; k[i++] = p->has_bias;
}

static int is_2d(const nnu_conv_params *p) {
    return p->in[0] == 1 && p->kernel[0] == 1 && p->stride[0] == 1;
}

static dnnl_format_tag_t act_tag(int nd, int cblk) {
    if (nd == 4) return cblk == 16 ? dnnl_nChw16c : dnnl_nchw;
    return cblk == 16 ? dnnl_nCdhw16c : dnnl_ncdhw;
}

/* Memory descriptors of one geometry: src/dst activations, plain weights, bias */
/* dt_src/dt_dst/dt_w: data types of the activations and of the primitive's weights
 * (the plain weights of the parameter block are always f32) */
static nnu_status make_mds(const nnu_conv_params *p, dnnl_memory_desc_t *src,
                           dnnl_memory_desc_t *dst, dnnl_memory_desc_t *wplain,
                           dnnl_memory_desc_t *wany, dnnl_memory_desc_t *bias, dnnl_dims_t st,
                           dnnl_dims_t pl, dnnl_dims_t pr, dnnl_data_type_t dt_src,
                           dnnl_data_type_t dt_dst, dnnl_data_type_t dt_w) {
    const int nd = is_2d(p) ? 4 : 5, a0 = nd == 4 ? 1 : 0, ns = nd - 2;
    dnnl_dims_t ds = {p->n, p->c_in}, dd = {p->n, p->c_out}, dw = {p->c_out, p->c_in};
    for (int a = a0; a < 3; a++) {
        ds[2 + a - a0] = p->in[a];
        dd[2 + a - a0] = p->out[a];
        dw[2 + a - a0] = p->kernel[a];
        st[a - a0] = p->stride[a];
        pl[a - a0] = p->pad[a];
        /* right padding so that out = (in + pl + pr - k)/s + 1 holds exactly */
        pr[a - a0] = p->transposed ? 0
                   : (p->out[a] - 1) * p->stride[a] + p->kernel[a] - p->in[a] - p->pad[a];
    }
    (void)ns;
    DN(dnnl_memory_desc_init_by_tag(src, nd, ds, dt_src, act_tag(nd, p->cblk_in)));
    DN(dnnl_memory_desc_init_by_tag(dst, nd, dd, dt_dst, act_tag(nd, p->cblk_out)));
    /* PyTorch: conv weight (Cout, Cin, k) = oi..; ConvTranspose weight (Cin, Cout, k) = io.. */
    dnnl_format_tag_t wt = p->transposed ? (nd == 4 ? dnnl_iohw : dnnl_iodhw)
                                         : (nd == 4 ? dnnl_oihw : dnnl_oidhw);
    DN(dnnl_memory_desc_init_by_tag(wplain, nd, dw, dnnl_f32, wt));
    DN(dnnl_memory_desc_init_by_tag(wany, nd, dw, dt_w, dnnl_format_tag_any));
    dnnl_dims_t db = {p->c_out};
    DN(dnnl_memory_desc_init_by_tag(bias, 1, db, dnnl_f32, dnnl_x));
    return NNU_STATUS_OK;
}

static nnu_status init_engine(void) {
    if (engine) return NNU_STATUS_OK;
    DN(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DN(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    return NNU_STATUS_OK;
}

static nnu_status exec(dnnl_primitive_t prim, int n, const dnnl_exec_arg_t *args) {
    DN(dnnl_primitive_execute(prim, stream, n, args));
    return NNU_STATUS_OK;
}

static nnu_status mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md) {
    DN(dnnl_memory_create(m, md, engine, DNNL_MEMORY_NONE));
    return NNU_STATUS_OK;
}

static float *alloc_md(const dnnl_memory_desc_t *md) {
    size_t b = (dnnl_memory_desc_get_size(md) + 63) & ~(size_t)63;
    return aligned_alloc(64, b ? b : 64);
}

static nnu_status find_entry(int dir, const nnu_conv_params *p, int bf16, conv_entry **out);

/* the f32 -> bf16 conversion k of an entry: md16 is the bf16 descriptor of the input */
static nnu_status build_cvt(conv_entry *e, int k, const dnnl_memory_desc_t *md16) {
    dnnl_memory_desc_t md32 = *md16;
    md32.data_type = dnnl_f32;
    dnnl_primitive_desc_t rpd;
    DN(dnnl_reorder_primitive_desc_create(&rpd, &md32, engine, md16, engine, NULL));
    DN(dnnl_primitive_create(&e->cvt[k], rpd));
    dnnl_primitive_desc_destroy(rpd);
    NNU_TRY(mem(&e->m_f32[k], &md32));
    NNU_TRY(mem(&e->m_bf16[k], md16));
    size_t need = dnnl_memory_desc_get_size(md16);
    if (need > cvt_cap[k]) {
        free(cvt_buf[k]);
        cvt_buf[k] = aligned_alloc(64, (need + 63) & ~(size_t)63);
        cvt_cap[k] = cvt_buf[k] ? need : 0;
        NNU_CHECK(cvt_buf[k], NNU_STATUS_ERR_OOM, "conv: bf16 buffer of %zu bytes", need);
    }
    return NNU_STATUS_OK;
}

/* Builds the entry of (dir, p, precision); the caller holds cache_lock.
 * bf16: bf16 inputs (src / diff_dst) and weights, f32 outputs (dst, diff_src,
 * diff_weights) and f32 accumulation inside oneDNN. */
static nnu_status build_entry(int dir, const nnu_conv_params *p, int bf16, conv_entry *e) {
    dnnl_memory_desc_t src, dst, wplain, wany, bias;
    dnnl_dims_t st, pl, pr;
    const dnnl_data_type_t lo = bf16 ? dnnl_bf16 : dnnl_f32;
    /* fwd: src lo, dst f32; bwd data: diff_src f32, diff_dst lo; bwd w: both lo */
    NNU_TRY(make_mds(p, &src, &dst, &wplain, &wany, &bias, st, pl, pr,
                     dir == NNU_DNNL_BWD_DATA ? dnnl_f32 : lo,
                     dir == NNU_DNNL_FWD ? dnnl_f32 : lo,
                     dir == NNU_DNNL_BWD_WEIGHTS ? dnnl_f32 : lo));
    const dnnl_alg_kind_t alg = p->transposed ? dnnl_deconvolution_direct
                                              : dnnl_convolution_direct;
    const dnnl_memory_desc_t *bmd = p->has_bias ? &bias : NULL;
    dnnl_convolution_desc_t cd;
    dnnl_deconvolution_desc_t dd;
    const void *od = p->transposed ? (const void *)&dd : (const void *)&cd;
    const_dnnl_primitive_desc_t hint = NULL;
    if (dir != NNU_DNNL_FWD) {
        conv_entry *f;
        NNU_TRY(find_entry(NNU_DNNL_FWD, p, bf16, &f));
        hint = f->pd;
    }
    if (dir == NNU_DNNL_FWD) {
        if (p->transposed)
            DN(dnnl_deconvolution_forward_desc_init(&dd, dnnl_forward_training, alg, &src, &wany,
                                                    bmd, &dst, st, pl, pr));
        else
            DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, alg, &src, &wany,
                                                  bmd, &dst, st, pl, pr));
    } else if (dir == NNU_DNNL_BWD_DATA) {
        if (p->transposed)
            DN(dnnl_deconvolution_backward_data_desc_init(&dd, alg, &src, &wany, &dst, st, pl, pr));
        else
            DN(dnnl_convolution_backward_data_desc_init(&cd, alg, &src, &wany, &dst, st, pl, pr));
    } else {
        if (p->transposed)
            DN(dnnl_deconvolution_backward_weights_desc_init(&dd, alg, &src, &wany, bmd, &dst, st,
                                                             pl, pr));
        else
            DN(dnnl_convolution_backward_weights_desc_init(&cd, alg, &src, &wany, bmd, &dst, st,
                                                           pl, pr));
    }
    DN(dnnl_primitive_desc_create(&e->pd, od, NULL, engine, hint));
    DN(dnnl_primitive_create(&e->prim, e->pd));
    nnu_cpu_count_primitive();
    const dnnl_query_t wq = dir == NNU_DNNL_BWD_WEIGHTS ? dnnl_query_diff_weights_md
                                                        : dnnl_query_weights_md;
    e->wmd = *dnnl_primitive_desc_query_md(e->pd, wq, 0);
    /* activations keep the caller's layouts; a and out are src/dst in the op's terms */
    const dnnl_memory_desc_t *ma = dir == NNU_DNNL_BWD_DATA ? &dst : &src;
    const dnnl_memory_desc_t *mo = dir == NNU_DNNL_BWD_DATA ? &src : &dst;
    NNU_TRY(mem(&e->m_a, ma));
    NNU_TRY(mem(&e->m_out, mo));           /* fwd: dst; bwd data: diff src; bwd w: diff dst */
    NNU_TRY(mem(&e->m_w, &e->wmd));
    NNU_TRY(mem(&e->m_wplain, &wplain));
    NNU_TRY(mem(&e->m_bias, &bias));
    int same = dnnl_memory_desc_equal(&e->wmd, &wplain);
    if (dir == NNU_DNNL_BWD_WEIGHTS) {
        /* diff weights land in wbuf, then one reorder with a sum post-op does
         * plain gw += wbuf (layout change and accumulation in one pass) */
        dnnl_primitive_attr_t attr;
        dnnl_post_ops_t po;
        DN(dnnl_primitive_attr_create(&attr));
        DN(dnnl_post_ops_create(&po));
        DN(dnnl_post_ops_append_sum(po, 1.0f));
        DN(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_primitive_desc_t rpd;
        DN(dnnl_reorder_primitive_desc_create(&rpd, &e->wmd, engine, &wplain, engine, attr));
        DN(dnnl_primitive_create(&e->wreorder, rpd));
        dnnl_primitive_desc_destroy(rpd);
        dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(attr);
        e->wbuf = alloc_md(&e->wmd);
        e->bbuf = aligned_alloc(64, (size_t)((p->c_out + 15) / 16 * 16) * sizeof(float));
        NNU_CHECK(e->wbuf && e->bbuf, NNU_STATUS_ERR_OOM, "conv: weight buffers");
    } else if (!same) {
        dnnl_primitive_desc_t rpd;
        DN(dnnl_reorder_primitive_desc_create(&rpd, &wplain, engine, &e->wmd, engine, NULL));
        DN(dnnl_primitive_create(&e->wreorder, rpd));
        dnnl_primitive_desc_destroy(rpd);
        e->wbuf = alloc_md(&e->wmd);
        NNU_CHECK(e->wbuf, NNU_STATUS_ERR_OOM, "conv: weight buffer");
    }
    if (dir == NNU_DNNL_BWD_WEIGHTS) {
        /* the second input (diff dst) */
        NNU_TRY(mem(&e->m_b, &dst));
    }
    if (bf16) {
        NNU_TRY(build_cvt(e, 0, ma));
        if (dir == NNU_DNNL_BWD_WEIGHTS) NNU_TRY(build_cvt(e, 1, &dst));
    }
    return NNU_STATUS_OK;
}

static nnu_status find_entry(int dir, const nnu_conv_params *p, int bf16, conv_entry **out) {
    int64_t key[KEY_LEN];
    make_key(dir, p, bf16, key);
    for (int i = 0; i < cache_len; i++)
        if (!memcmp(cache[i]->key, key, sizeof key)) { *out = cache[i]; return NNU_STATUS_OK; }
    NNU_TRY(init_engine());
    if (cache_len == cache_cap) {
        int cap = cache_cap ? 2 * cache_cap : 64;
        conv_entry **c = realloc(cache, (size_t)cap * sizeof *c);
        NNU_CHECK(c, NNU_STATUS_ERR_OOM, "conv: primitive cache");
        cache = c;
        cache_cap = cap;
    }
    conv_entry *e = calloc(1, sizeof *e);
    NNU_CHECK(e, NNU_STATUS_ERR_OOM, "conv: primitive cache entry");
    memcpy(e->key, key, sizeof key);
    nnu_status st = build_entry(dir, p, bf16, e);
    if (st != NNU_STATUS_OK) { free(e); return st; }   /* small leak of dnnl objects on failure */
    cache[cache_len++] = e;
    *out = e;
    return NNU_STATUS_OK;
}


/* bf16 entries: converts input k (f32, caller's layout) into cvt_buf[k] and returns
 * the buffer the primitive reads */
static nnu_status convert(conv_entry *e, int k, const void **in) {
    if (!e->cvt[k]) return NNU_STATUS_OK;
    DN(dnnl_memory_set_data_handle(e->m_f32[k], (void *)*in));
    DN(dnnl_memory_set_data_handle(e->m_bf16[k], cvt_buf[k]));
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, e->m_f32[k]}, {DNNL_ARG_TO, e->m_bf16[k]}};
    NNU_TRY(exec(e->cvt[k], 2, ra));
    nnu_cpu_count_reorder();
    *in = cvt_buf[k];
    return NNU_STATUS_OK;
}

nnu_status nnu_dnnl_conv_run(int dir, const nnu_conv_params *p, int bf16, const float *a,
                             const float *b, float *out, float *w, float *bias) {
    conv_entry *e;
    pthread_mutex_lock(&cache_lock);
    nnu_status st = find_entry(dir, p, bf16, &e);
    pthread_mutex_unlock(&cache_lock);
    NNU_TRY(st);
    const void *ain = a, *bin = b;
    NNU_TRY(convert(e, 0, &ain));
    if (dir == NNU_DNNL_BWD_WEIGHTS) NNU_TRY(convert(e, 1, &bin));
    /* one entry is used by one caller at a time (the training loop is sequential) */
    DN(dnnl_memory_set_data_handle(e->m_a, (void *)ain));
    DN(dnnl_memory_set_data_handle(e->m_out, out));
    DN(dnnl_memory_set_data_handle(e->m_wplain, w));
    if (dir != NNU_DNNL_BWD_WEIGHTS) {
        void *wp = w;
        if (e->wreorder) {
            DN(dnnl_memory_set_data_handle(e->m_w, e->wbuf));
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, e->m_wplain}, {DNNL_ARG_TO, e->m_w}};
            NNU_TRY(exec(e->wreorder, 2, ra));
            nnu_cpu_count_reorder();
            wp = e->wbuf;
        }
        DN(dnnl_memory_set_data_handle(e->m_w, wp));
        if (dir == NNU_DNNL_FWD) {
            int has_b = p->has_bias && bias;
            if (has_b) DN(dnnl_memory_set_data_handle(e->m_bias, bias));
            NNU_CHECK(has_b || !p->has_bias, NNU_STATUS_ERR_ARG,
                      "conv: params say bias but no bias pointer was given");
            dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->m_a}, {DNNL_ARG_WEIGHTS, e->m_w},
                                       {DNNL_ARG_DST, e->m_out}, {DNNL_ARG_BIAS, e->m_bias}};
            NNU_TRY(exec(e->prim, has_b ? 4 : 3, args));
        } else {
            dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, e->m_a}, {DNNL_ARG_WEIGHTS, e->m_w},
                                       {DNNL_ARG_DIFF_SRC, e->m_out}};
            NNU_TRY(exec(e->prim, 3, args));
        }
    } else {
        /* a = x, b = gy; out unused */
        DN(dnnl_memory_set_data_handle(e->m_b, (void *)bin));
        DN(dnnl_memory_set_data_handle(e->m_w, e->wbuf));
        DN(dnnl_memory_set_data_handle(e->m_bias, e->bbuf));
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->m_a}, {DNNL_ARG_DIFF_DST, e->m_b},
                                   {DNNL_ARG_DIFF_WEIGHTS, e->m_w}, {DNNL_ARG_DIFF_BIAS, e->m_bias}};
        NNU_TRY(exec(e->prim, p->has_bias ? 4 : 3, args));
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, e->m_w}, {DNNL_ARG_TO, e->m_wplain}};
        NNU_TRY(exec(e->wreorder, 2, ra));
        nnu_cpu_count_reorder();
        if (p->has_bias && bias)
            for (int64_t c = 0; c < p->c_out; c++) bias[c] += e->bbuf[c];
    }
    DN(dnnl_stream_wait(stream));
    return NNU_STATUS_OK;
}
