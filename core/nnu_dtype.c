/* nnu_dtype.c: dtype table, IEEE half conversion, generic load/store. */
#include "nnu_dtype.h"

#include <math.h>
#include <string.h>

static const struct { const char *name; size_t size; int is_float; } dtype_info[NNU_DTYPE_COUNT] = {
    [NNU_DTYPE_F32] = {"f32", 4, 1}, [NNU_DTYPE_F64] = {"f64", 8, 1}, [NNU_DTYPE_F16] = {"f16", 2, 1},
    [NNU_DTYPE_U8]  = {"u8", 1, 0},  [NNU_DTYPE_I8]  = {"i8", 1, 0},  [NNU_DTYPE_I16] = {"i16", 2, 0},
    [NNU_DTYPE_U16] = {"u16", 2, 0}, [NNU_DTYPE_I32] = {"i32", 4, 0}, [NNU_DTYPE_I64] = {"i64", 8, 0},
};

size_t nnu_dtype_size(nnu_dtype dt) { return (unsigned)dt < NNU_DTYPE_COUNT ? dtype_info[dt].size : 0; }
const char *nnu_dtype_name(nnu_dtype dt) { return (unsigned)dt < NNU_DTYPE_COUNT ? dtype_info[dt].name : "?"; }
int nnu_dtype_is_float(nnu_dtype dt) { return (unsigned)dt < NNU_DTYPE_COUNT && dtype_info[dt].is_float; }

int nnu_dtype_from_name(const char *name, nnu_dtype *out) {
    for (int i = 0; i < NNU_DTYPE_COUNT; i++)
        if (strcmp(name, dtype_info[i].name) == 0) { *out = (nnu_dtype)i; return 1; }
    return 0;
}

float nnu_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else {                                   /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) { man <<= 1; exp--; }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);   /* inf / nan */
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t nnu_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u)                     /* inf or nan (keep nan quiet) */
        return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);
    if (absx >= 0x477ff000u) return sign | 0x7c00;   /* rounds to >= 65520: overflow to inf */
    if (absx < 0x38800000u) {                    /* below 2^-14: subnormal half (or zero) */
        /* value / 2^-24 rounded to nearest even, done in float which is exact here */
        float a;
        memcpy(&a, &absx, 4);
        return sign | (uint16_t)nearbyintf(a * 16777216.0f);
    }
    uint32_t mant = absx & 0x7fffff, e = (absx >> 23) - 127 + 15;
    uint32_t h = (e << 10) | (mant >> 13), rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;   /* round half to even; carry may bump exponent */
    return sign | (uint16_t)h;
}

double nnu_dtype_load(nnu_dtype dt, const void *p) {
    switch (dt) {
    case NNU_DTYPE_F32: return *(const float *)p;
    case NNU_DTYPE_F64: return *(const double *)p;
    case NNU_DTYPE_F16: return nnu_f16_to_f32(*(const uint16_t *)p);
    case NNU_DTYPE_U8:  return *(const uint8_t *)p;
    case NNU_DTYPE_I8:  return *(const int8_t *)p;
    case NNU_DTYPE_I16: return *(const int16_t *)p;
    case NNU_DTYPE_U16: return *(const uint16_t *)p;
    case NNU_DTYPE_I32: return *(const int32_t *)p;
    case NNU_DTYPE_I64: return (double)*(const int64_t *)p;
    default: return NAN;
    }
}

void nnu_dtype_store(nnu_dtype dt, void *p, double v) {
    switch (dt) {
    case NNU_DTYPE_F32: *(float *)p = (float)v; break;
    case NNU_DTYPE_F64: *(double *)p = v; break;
    case NNU_DTYPE_F16: *(uint16_t *)p = nnu_f32_to_f16((float)v); break;
    case NNU_DTYPE_U8:  *(uint8_t *)p = (uint8_t)v; break;
    case NNU_DTYPE_I8:  *(int8_t *)p = (int8_t)v; break;
    case NNU_DTYPE_I16: *(int16_t *)p = (int16_t)v; break;
    case NNU_DTYPE_U16: *(uint16_t *)p = (uint16_t)v; break;
    case NNU_DTYPE_I32: *(int32_t *)p = (int32_t)v; break;
    case NNU_DTYPE_I64: *(int64_t *)p = (int64_t)v; break;
    default: break;
    }
}
