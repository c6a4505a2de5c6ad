"""Expected values of tests/lua/test_overlay.lua, from the reference's own functions
(nnunetv2/utilities/overlay_plots.py: select_slice_to_plot2, generate_overlay).

Run with the reference environment (nnunetv2, numpy, pandas installed):
    python tests/gen/gen_overlay_ref.py
It prints Lua literals that test_overlay.lua holds verbatim.

Case A: a (4, 3, 5) float32 image with values (i * 37) % 23 - 5.5 and a segmentation
with labels 0/1/2/3 and -1 (preprocessed data's outside-the-mask value) where label 3
occurs only in slice 3, label 1 in slices 1 and 2, label 2 in slices 2 and 3, so the
quirky normalisation decides the slice. Case B: a slice whose values are only {0, 2}
(label 2 takes the second colour). Case C: no foreground (slice 0)."""
import numpy as np
from nnunetv2.utilities.overlay_plots import select_slice_to_plot2, generate_overlay


def lua_list(a):
    return "{ " + ", ".join(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in np.ravel(a)) + " }"


img = ((np.arange(4 * 3 * 5) * 37) % 23 - 5.5).astype(np.float32).reshape(4, 3, 5)
seg = np.zeros((4, 3, 5), dtype=np.int16)
seg[0, 0, :] = -1
seg[1, 1, 1:3] = 1
seg[2, 1, 0:4] = 1
seg[2, 2, 0:2] = 2
seg[3, 0, 0:3] = 2
seg[3, 2, 4] = 3
seg[3, 1, 4] = -1

s = select_slice_to_plot2(img, seg)
sl = np.copy(seg[s])
sl[sl < 0] = 0
ov = generate_overlay(img[s], sl, overlay_intensity=0.6)
print("-- case A")
print("IMG = " + lua_list(img))
print("SEG = " + lua_list(seg))
print("SLICE_A = %d  -- 0-based" % s)
print("OVERLAY_A = " + lua_list(ov))

segb = np.zeros((3, 5), dtype=np.int16)
segb[1, 1:4] = 2
ovb = generate_overlay(img[1], segb, overlay_intensity=0.25)
print("-- case B: slice 1 of IMG, labels {0, 2}, intensity 0.25")
print("SEG_B = " + lua_list(segb))
print("OVERLAY_B = " + lua_list(ovb))

print("-- case C")
print("SLICE_C = %d" % select_slice_to_plot2(img, np.zeros_like(seg)))
