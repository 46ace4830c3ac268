// The optimizer's Adam update (TS side: core/src/training/native-adam.ts, next to the optimizers).
#include "common.h"

namespace dptrain_native {

namespace {

struct AdamArgs {
  float* w;
  const float* g;
  float* m;
  float* v;
  double lrT, b1, b2, eps;
};

// 0 when x rounded to float32 is finite, else 1 (no call and no branch, so the loops vectorise; NaN is not finite).
inline int NonFiniteF32(double x) { return static_cast<int>(!(std::fabs(static_cast<float>(x)) <= FLT_MAX)); }

// The loops are compiled for AVX-512 and for the baseline ISA; the loader picks by CPU. The arithmetic is the same in
// every lane width: IEEE multiply, add, divide and square root are correctly rounded, and -ffp-contract=off keeps the
// compiler from fusing a multiply and an add, so the vector loops give the JS loop's bits.

// 1 when [begin, end) holds an element whose new m, v or weight is not finite in float32 (the exact check).
__attribute__((target_clones("avx512f", "default"))) int AnyNonFinite(AdamArgs a, int64_t begin, int64_t end) {
  const float* __restrict w = a.w;
  const float* __restrict g = a.g;
  const float* __restrict m = a.m;
  const float* __restrict v = a.v;
  const double c1 = 1 - a.b1, c2 = 1 - a.b2;
  int bad = 0;
  for (int64_t i = begin; i < end; ++i) {
    const double gi = g[i];
    const double mi = a.b1 * static_cast<double>(m[i]) + c1 * gi;
    const double vi = a.b2 * static_cast<double>(v[i]) + c2 * gi * gi;
    const double wi = static_cast<double>(w[i]) - (a.lrT * mi) / (std::sqrt(vi) + a.eps);
    bad |= NonFiniteF32(mi) | NonFiniteF32(vi) | NonFiniteF32(wi);
  }
  return bad;
}

// 0 when every element of [begin, end) certainly gets a finite new m, v and weight, without the square root and the
// division: |new w| <= |w| + |lrT m| / eps, and a bound below FLT_MAX / 2 stays finite after rounding. 1 means "maybe
// not" (then AnyNonFinite decides); NaN anywhere fails every comparison, so it is caught too.
__attribute__((target_clones("avx512f", "default"))) int MaybeNonFinite(AdamArgs a, int64_t begin, int64_t end) {
  const float* __restrict w = a.w;
  const float* __restrict g = a.g;
  const float* __restrict m = a.m;
  const float* __restrict v = a.v;
  const double c1 = 1 - a.b1, c2 = 1 - a.b2, stepBound = std::fabs(a.lrT) / a.eps, limit = FLT_MAX / 2.0;
  int maybe = 0;
  for (int64_t i = begin; i < end; ++i) {
    const double gi = g[i];
    const double mi = a.b1 * static_cast<double>(m[i]) + c1 * gi;
    const double vi = a.b2 * static_cast<double>(v[i]) + c2 * gi * gi;
    const double wBound = std::fabs(static_cast<double>(w[i])) + stepBound * std::fabs(mi);
    maybe |= static_cast<int>(!(std::fabs(mi) <= limit)) | static_cast<int>(!(std::fabs(vi) <= limit)) |
             static_cast<int>(!(wBound <= limit));
  }
  return maybe;
}

// The update of [begin, end), in place.
__attribute__((target_clones("avx512f", "default"))) void AdamRange(AdamArgs a, int64_t begin, int64_t end) {
  float* __restrict w = a.w;
  const float* __restrict g = a.g;
  float* __restrict m = a.m;
  float* __restrict v = a.v;
  const double c1 = 1 - a.b1, c2 = 1 - a.b2;
  for (int64_t i = begin; i < end; ++i) {
    const double gi = g[i];
    const double mi = a.b1 * static_cast<double>(m[i]) + c1 * gi;
    const double vi = a.b2 * static_cast<double>(v[i]) + c2 * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    w[i] = static_cast<float>(static_cast<double>(w[i]) - (a.lrT * mi) / (std::sqrt(vi) + a.eps));
  }
}

constexpr int64_t kAdamChunk = 16384;

}  // namespace

// Adam (Keras form) over flat arrays, in place: m, v and weights updated. The arithmetic is done in double, in the
// same order as core's JS loop (AdamOptimizer.step), so both give bit-identical weights; this one runs vectorised
// on every OpenMP thread instead of one JS thread. args: w, g, m, v, lrT (lr with bias correction), b1, b2, eps.
// Returns -1, or (writing nothing) the first index whose new m, v or weight would not be finite.
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  AdamArgs a{F32(info[0], "weights"), F32(info[1], "gradients"), F32(info[2], "m"), F32(info[3], "v"), 0, 0, 0, 0};
  const int64_t n = static_cast<int64_t>(Len(info[0]));
  CheckLen(info[1], n, "gradients");
  CheckLen(info[2], n, "m");
  CheckLen(info[3], n, "v");
  a.lrT = info[4].As<Napi::Number>().DoubleValue();
  a.b1 = info[5].As<Napi::Number>().DoubleValue();
  a.b2 = info[6].As<Napi::Number>().DoubleValue();
  a.eps = info[7].As<Napi::Number>().DoubleValue();
  const int64_t chunks = (n + kAdamChunk - 1) / kAdamChunk;
  auto end = [&](int64_t c) { return std::min(n, (c + 1) * kAdamChunk); };
  // First pass: refuse (write nothing, return the first index) an update that would make m, v or a weight
  // non-finite in float32, so that a huge gradient cannot freeze weights with an infinite second moment. The cheap
  // bound clears almost every chunk; the exact check runs only on the others.
  int64_t badChunk = chunks;
#pragma omp parallel for schedule(static) reduction(min : badChunk) if (n > 262144)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kAdamChunk;
    if (MaybeNonFinite(a, b, end(c)) && AnyNonFinite(a, b, end(c)) && c < badChunk) badChunk = c;
  }
  if (badChunk < chunks) {
    int64_t i = badChunk * kAdamChunk;
    while (!AnyNonFinite(a, i, i + 1)) ++i;
    return Napi::Number::New(info.Env(), static_cast<double>(i));
  }
#pragma omp parallel for schedule(static) if (n > 262144)
  for (int64_t c = 0; c < chunks; ++c) AdamRange(a, c * kAdamChunk, end(c));
  return Napi::Number::New(info.Env(), -1);
}

}  // namespace dptrain_native
