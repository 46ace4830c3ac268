// Fused gradients (TS side: src/gradients.ts): one pass where tfjs's gradient functions run several elementwise
// kernels. Each gives the bits of the tfjs formula it replaces on this backend (checked by gradients.test.ts).
#include "common.h"

namespace dptrain_native {

// clipGrad(dy, x, out, lo, hi): out = lo <= x <= hi ? dy : 0 — tfjs's ClipByValue gradient,
// where(logicalAnd(x >= lo, x <= hi), dy, zerosLike(dy)), in one pass (a NaN x gives 0, as there).
Napi::Value ClipGrad(const Napi::CallbackInfo& info) {
  const float* dy = F32(info[0], "dy");
  const float* x = F32(info[1], "x");
  float* out = F32(info[2], "out");
  const float lo = static_cast<float>(info[3].As<Napi::Number>().DoubleValue());
  const float hi = static_cast<float>(info[4].As<Napi::Number>().DoubleValue());
  const int64_t n = static_cast<int64_t>(Len(info[2]));
  CheckLen(info[0], n, "dy");
  CheckLen(info[1], n, "x");
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] >= lo && x[i] <= hi) ? dy[i] : 0.0f;
  return info.Env().Undefined();
}

// batchNormGrad(x, dy, mean, rsqrtVar, scale, dx, dScale, dOffset, C): the inference-form batch norm's gradients
// over rows of C channels, as tfjs's FusedBatchNorm gradient computes them with this backend's kernels:
//   dx = (dy * r) * scale                      (mul(mul(dy, tile(r)), scale))
//   dScale = sum over rows of dy * ((x - mean) * r)   (sum(mul(dy, mul(sub(x, mean), r))))
//   dOffset = sum over rows of dy
// The two sums go through SumRowsInThreadOrder (common.h), as reduceSum's do, so the bits are those of the unfused
// formula.
Napi::Value BatchNormGrad(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0], "x");
  const float* dy = F32(info[1], "dy");
  const float* mean = F32(info[2], "mean");
  const float* r = F32(info[3], "rsqrtVar");
  const float* scale = F32(info[4], "scale");
  float* dx = F32(info[5], "dx");
  float* dScale = F32(info[6], "dScale");
  float* dOffset = F32(info[7], "dOffset");
  const int64_t C = info[8].As<Napi::Number>().Int64Value();
  const int64_t n = static_cast<int64_t>(Len(info[5]));
  if (C <= 0 || n % C != 0) throw Napi::RangeError::New(info.Env(), "batchNormGrad: size is not a multiple of C");
  CheckLen(info[0], n, "x");
  CheckLen(info[1], n, "dy");
  for (int k = 2; k <= 4; ++k) CheckLen(info[k], C, k == 2 ? "mean" : k == 3 ? "rsqrtVar" : "scale");
  CheckLen(info[6], C, "dScale");
  CheckLen(info[7], C, "dOffset");
  // partial sums: d(scale) in [0, C), d(offset) in [C, 2 C)
  std::vector<double> sums(static_cast<size_t>(2 * C));
  SumRowsInThreadOrder(
      n / C, 2 * C, n > 65536,
      [&](int64_t row, double* acc) {
        const float* px = x + row * C;
        const float* pdy = dy + row * C;
        float* pdx = dx + row * C;
#pragma omp simd
        for (int64_t c = 0; c < C; ++c) {
          const float g = pdy[c];
          const float dyr = g * r[c];
          pdx[c] = dyr * scale[c];
          const float xm = px[c] - mean[c];
          const float xmr = xm * r[c];
          acc[c] += static_cast<double>(g * xmr);
          acc[C + c] += static_cast<double>(g);
        }
      },
      sums.data());
  for (int64_t c = 0; c < C; ++c) {
    dScale[c] = static_cast<float>(sums[static_cast<size_t>(c)]);
    dOffset[c] = static_cast<float>(sums[static_cast<size_t>(C + c)]);
  }
  return info.Env().Undefined();
}

}  // namespace dptrain_native
