/* l_infer.h: how a C predictor (e.g. the network binding) plugs into
 * infer.sliding_window without a Lua call per window.
 *
 * Give the predictor's userdata metatable a field "__nnu_slide_predict" holding a
 * light userdata that points to a static l_infer_predictor:
 *     static const l_infer_predictor pred = {my_predict, my_ctx_of};
 *     lua_pushlightuserdata(L, (void *)&pred);
 *     lua_setfield(L, -2, "__nnu_slide_predict");
 * infer.sliding_window(image, opts, udata) then calls my_predict(ctx_of(block), ...)
 * where block is lua_touserdata(udata) (ctx_of NULL: the block itself is ctx). */
#ifndef L_INFER_H
#define L_INFER_H

#include "nnu_slide.h"

typedef struct l_infer_predictor {
    nnu_slide_predict_fn fn;
    void *(*ctx_of)(void *udata);
} l_infer_predictor;

#endif
