// The optimizer's Adam update (TS side: core/src/training/native-adam.ts, next to the optimizers).
#include "common.h"

namespace dptrain_native {

// Adam (Keras form) over flat arrays, in place: m, v and weights updated. The arithmetic is done in double, in the
// same order as core's JS loop (AdamOptimizer.step), so both give bit-identical weights; this one runs vectorised
// on every OpenMP thread instead of one JS thread. args: w, g, m, v, lrT (lr with bias correction), b1, b2, eps.
// Returns -1, or (writing nothing) the first index whose new m, v or weight would not be finite.
Napi::Value AdamUpdate(const Napi::CallbackInfo& info) {
  float* w = F32(info[0], "weights");
  const float* g = F32(info[1], "gradients");
  float* m = F32(info[2], "m");
  float* v = F32(info[3], "v");
  const int64_t n = static_cast<int64_t>(Len(info[0]));
  CheckLen(info[1], n, "gradients");
  CheckLen(info[2], n, "m");
  CheckLen(info[3], n, "v");
  const double lrT = info[4].As<Napi::Number>().DoubleValue();
  const double b1 = info[5].As<Napi::Number>().DoubleValue();
  const double b2 = info[6].As<Napi::Number>().DoubleValue();
  const double eps = info[7].As<Napi::Number>().DoubleValue();
  const double c1 = 1 - b1;
  const double c2 = 1 - b2;
  // First pass: refuse (write nothing, return the first index) an update that would make m, v or a weight
  // non-finite in float32, so that a huge gradient cannot freeze weights with an infinite second moment.
  int64_t bad = n;
#pragma omp parallel for schedule(static) reduction(min : bad) if (n > 262144)
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[i];
    const double mi = b1 * static_cast<double>(m[i]) + c1 * gi;
    const double vi = b2 * static_cast<double>(v[i]) + c2 * gi * gi;
    const double wi = static_cast<double>(w[i]) - (lrT * mi) / (std::sqrt(vi) + eps);
    if (!std::isfinite(static_cast<float>(mi)) || !std::isfinite(static_cast<float>(vi)) || !std::isfinite(static_cast<float>(wi))) {
      if (i < bad) bad = i;
    }
  }
  if (bad < n) return Napi::Number::New(info.Env(), static_cast<double>(bad));
#pragma omp parallel for schedule(static) if (n > 262144)
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[i];
    const double mi = b1 * static_cast<double>(m[i]) + c1 * gi;
    const double vi = b2 * static_cast<double>(v[i]) + c2 * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    w[i] = static_cast<float>(static_cast<double>(w[i]) - (lrT * mi) / (std::sqrt(vi) + eps));
  }
  return Napi::Number::New(info.Env(), -1);
}

}  // namespace dptrain_native
