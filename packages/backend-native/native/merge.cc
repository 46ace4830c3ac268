// Gradient merging kernels for the coordinator (and the workers' micro-batch tree): the count-weighted mean of two
// gradients, out[i] = float(wa * double(a[i]) + wb * double(b[i])), with exactly the rounding of core's JS merge
// (meanOfTwo: each product and the sum rounded to double, then the sum once to float32), so both give the same
// bits. AVX-512 when the CPU has it (checked at run time), else the scalar loop; built with -ffp-contract=off, so
// the compiler never fuses the multiply and add into an FMA (which would round once instead of twice).
#include <immintrin.h>

#include <cstdint>

#include "common.h"

namespace dptrain_native {
namespace {

void MergeScalar(float* out, const float* a, const float* b, double wa, double wb, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    const double pa = wa * static_cast<double>(a[i]);
    const double pb = wb * static_cast<double>(b[i]);
    out[i] = static_cast<float>(pa + pb);
  }
}

// GCC 12 warns of the intrinsics' own _mm512_undefined_* operands (a false positive, GCC bug 105593)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void MergeAvx512(float* out, const float* a, const float* b, double wa, double wb, int64_t n) {
  const __m512d va = _mm512_set1_pd(wa);
  const __m512d vb = _mm512_set1_pd(wb);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    // widen 8 floats to double, multiply and add (separate roundings, no FMA), narrow to float32 (nearest even)
    const __m512d da = _mm512_cvtps_pd(_mm256_loadu_ps(a + i));
    const __m512d db = _mm512_cvtps_pd(_mm256_loadu_ps(b + i));
    _mm256_storeu_ps(out + i, _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(va, da), _mm512_mul_pd(vb, db))));
  }
  MergeScalar(out, a, b, wa, wb, i, n);
}
#pragma GCC diagnostic pop

bool HasAvx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}

// s[k] += double(g[k * stride + i])^2 for i < len, each lane in index order: L independent chains (the bits of L
// sequential loops, at the throughput of L).
template <int L>
void SquareSumLanes(const float* g, int64_t stride, int64_t len, double* s) {
  for (int64_t i = 0; i < len; ++i) {
    for (int k = 0; k < L; ++k) {
      const double x = g[k * stride + i];
      s[k] += x * x;
    }
  }
}

}  // namespace

// bucketSumsOfSquares(g, bucketFloats, out): out[k] = the float64 sum of squares of bucket k of g ([k b, (k + 1) b)),
// summed in index order as core's rangeSumOfSquares does (the same bits); 8 buckets run side by side.
Napi::Value BucketSumsOfSquares(const Napi::CallbackInfo& info) {
  const float* g = F32(info[0], "g");
  const int64_t n = static_cast<int64_t>(Len(info[0]));
  const int64_t b = info[1].As<Napi::Number>().Int64Value();
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
    throw Napi::TypeError::New(info.Env(), "out must be a Float64Array");
  }
  auto outArr = info[2].As<Napi::Float64Array>();
  const int64_t nb = b > 0 ? (n + b - 1) / b : -1;
  if (b < 1 || static_cast<int64_t>(outArr.ElementLength()) != nb) {
    throw Napi::RangeError::New(info.Env(), "bucketSumsOfSquares: out must hold one value per bucket");
  }
  double* out = outArr.Data();
  const int64_t full = n / b;  // buckets of exactly b floats
  int64_t k = 0;
  for (; k + 8 <= full; k += 8) {
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    SquareSumLanes<8>(g + k * b, b, b, s);
    for (int j = 0; j < 8; ++j) out[k + j] = s[j];
  }
  for (; k < nb; ++k) {
    double s = 0;
    SquareSumLanes<1>(g + k * b, b, (k + 1) * b <= n ? b : n - k * b, &s);
    out[k] = s;
  }
  return info.Env().Undefined();
}

// mergeTwo(out, a, b, wa, wb): out may be a or b. Returns the instruction set used ("avx512" or "scalar").
Napi::Value MergeTwo(const Napi::CallbackInfo& info) {
  float* out = F32(info[0], "out");
  const float* a = F32(info[1], "a");
  const float* b = F32(info[2], "b");
  const int64_t n = static_cast<int64_t>(Len(info[0]));
  if (static_cast<int64_t>(Len(info[1])) != n || static_cast<int64_t>(Len(info[2])) != n) {
    throw Napi::RangeError::New(info.Env(), "mergeTwo: out, a and b must have the same length");
  }
  const double wa = info[3].As<Napi::Number>().DoubleValue();
  const double wb = info[4].As<Napi::Number>().DoubleValue();
  if (HasAvx512()) {
    MergeAvx512(out, a, b, wa, wb, n);
    return Napi::String::New(info.Env(), "avx512");
  }
  MergeScalar(out, a, b, wa, wb, 0, n);
  return Napi::String::New(info.Env(), "scalar");
}

// firstNonFinite(g): the index of the first NaN or ±Infinity in g, or -1 (an exponent-bits test, vectorised).
Napi::Value FirstNonFinite(const Napi::CallbackInfo& info) {
  const float* g = F32(info[0], "g");
  const int64_t n = static_cast<int64_t>(Len(info[0]));
  const uint32_t* u = reinterpret_cast<const uint32_t*>(g);
  constexpr int64_t kBlock = 4096;
  for (int64_t lo = 0; lo < n; lo += kBlock) {
    const int64_t hi = lo + kBlock < n ? lo + kBlock : n;
    uint32_t any = 0;
    for (int64_t i = lo; i < hi; ++i) any |= static_cast<uint32_t>((u[i] & 0x7f800000u) == 0x7f800000u);
    if (any) {
      for (int64_t i = lo; i < hi; ++i)
        if ((u[i] & 0x7f800000u) == 0x7f800000u) return Napi::Number::New(info.Env(), static_cast<double>(i));
    }
  }
  return Napi::Number::New(info.Env(), -1);
}

}  // namespace dptrain_native
