/* nnu_net_slide: the network as the sliding window's predictor (nnu_slide.h), so
 * that infer.sliding_window and nnu_slide_predict call the network's C forward for
 * every batch of windows, without a Lua call, on whatever backend the net lives
 * (CPU or CUDA: the windows are copied in and the logits out through the table). */
#ifndef NNU_NET_SLIDE_H
#define NNU_NET_SLIDE_H

#include "nnu_net.h"
#include "nnu_slide.h"

/* An nnu_slide_predict_fn with ctx = the nnu_net *. patch_batch: (B, Cin, pz, py, px)
 * f32 contiguous for 3-D nets, (B, Cin, py, px) for 2-D nets; logits_out: (B, K, same
 * spatial) f32 contiguous, overwritten with the full-resolution logits of an inference
 * forward (the net's training plan is reused when batch and patch match, else the lean
 * inference arena is planned; a smaller last batch reuses the arena). */
nnu_status nnu_net_slide_predict(void *net, const nnu_tensor *patch_batch,
                                 nnu_tensor *logits_out);

#endif
