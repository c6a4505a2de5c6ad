/* nnu_dtype: element types of tensors and their conversions.
 * f16 is a storage type (IEEE binary16): it is converted to f32 for arithmetic. */
#ifndef NNU_DTYPE_H
#define NNU_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum nnu_dtype {
    NNU_DTYPE_F32 = 0,
    NNU_DTYPE_F64,
    NNU_DTYPE_F16,
    NNU_DTYPE_U8,
    NNU_DTYPE_I8,
    NNU_DTYPE_I16,
    NNU_DTYPE_U16,
    NNU_DTYPE_I32,
    NNU_DTYPE_I64,
    NNU_DTYPE_COUNT
} nnu_dtype;

size_t      nnu_dtype_size(nnu_dtype dt);
const char *nnu_dtype_name(nnu_dtype dt);                /* "f32", "u8", ... */
int         nnu_dtype_from_name(const char *name, nnu_dtype *out);  /* 1 if known */
int         nnu_dtype_is_float(nnu_dtype dt);

float    nnu_f16_to_f32(uint16_t h);
uint16_t nnu_f32_to_f16(float f);                        /* round to nearest even */

/* Element at p (of type dt) as double / store a double into p with C conversion
 * semantics for integers (truncation toward zero; callers round first if they
 * need rounding, and clamp if they need saturation). */
double nnu_dtype_load(nnu_dtype dt, const void *p);
void   nnu_dtype_store(nnu_dtype dt, void *p, double v);

#endif
