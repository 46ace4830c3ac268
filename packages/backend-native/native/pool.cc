// Max pooling (TS side: src/kernels/pool.ts): hand-written NHWC loops, forward and gradient, as tfjs cpu computes them.
#include "common.h"

namespace dptrain_native {

// pool[6] = [kh, kw, sh, sw, pt, pl]
struct PoolGeom {
  int64_t N, H, W, C, OH, OW, kh, kw, sh, sw, pt, pl;
};
PoolGeom PGeom(const Napi::CallbackInfo& info, int xi, int yi, int pi) {
  auto xs = Dims(info[xi], 4, "xShape");
  auto ys = Dims(info[yi], 4, "yShape");
  auto p = Dims(info[pi], 6, "pool");
  return {xs[0], xs[1], xs[2], xs[3], ys[1], ys[2], p[0], p[1], p[2], p[3], p[4], p[5]};
}

// Calls cell(base) for each input cell of output (n, oh, ow)'s window, row-major, padded cells left out; `base` is
// the cell's offset in the NHWC input (channel 0).
template <class Cell>
inline void ForEachWindowCell(const PoolGeom& g, int64_t n, int64_t oh, int64_t ow, Cell cell) {
  for (int64_t i = 0; i < g.kh; ++i) {
    const int64_t h = oh * g.sh - g.pt + i;
    if (h < 0 || h >= g.H) continue;
    for (int64_t j = 0; j < g.kw; ++j) {
      const int64_t w = ow * g.sw - g.pl + j;
      if (w < 0 || w >= g.W) continue;
      cell(((n * g.H + h) * g.W + w) * g.C);
    }
  }
}

// maxPool(x, xShape, y, yShape, pool[6]); padded cells never win (as tfjs).
Napi::Value MaxPool(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0], "x");
  float* y = F32(info[2], "y");
  PoolGeom g = PGeom(info, 1, 3, 4);
  CheckLen(info[0], g.N * g.H * g.W * g.C, "x");
  CheckLen(info[2], g.N * g.OH * g.OW * g.C, "y");
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t oh = 0; oh < g.OH; ++oh) {
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        float* out = y + ((n * g.OH + oh) * g.OW + ow) * g.C;
        for (int64_t c = 0; c < g.C; ++c) out[c] = -FLT_MAX;
        bool any = false;
        ForEachWindowCell(g, n, oh, ow, [&](int64_t base) {
          any = true;
          const float* in = x + base;
          for (int64_t c = 0; c < g.C; ++c) out[c] = in[c] > out[c] ? in[c] : out[c];
        });
        if (!any) std::memset(out, 0, sizeof(float) * g.C);
      }
    }
  }
  return info.Env().Undefined();
}

// maxPoolGrad(dy, x, xShape, dx, yShape, pool[6]): dy goes to the first maximal cell of each window
// (row-major window order, like tfjs cpu). dx is overwritten.
Napi::Value MaxPoolGrad(const Napi::CallbackInfo& info) {
  const float* dy = F32(info[0], "dy");
  const float* x = F32(info[1], "x");
  float* dx = F32(info[3], "dx");
  PoolGeom g = PGeom(info, 2, 4, 5);
  CheckLen(info[0], g.N * g.OH * g.OW * g.C, "dy");
  CheckLen(info[1], g.N * g.H * g.W * g.C, "x");
  CheckLen(info[3], g.N * g.H * g.W * g.C, "dx");
  std::memset(dx, 0, sizeof(float) * g.N * g.H * g.W * g.C);
  // Parallel over (n, c-block): windows overlap spatially, so never split a channel's spatial plane.
  const int64_t CB = 16;
  const int64_t nCb = (g.C + CB - 1) / CB;
#pragma omp parallel
  {
    std::vector<float> best(CB);
    std::vector<int64_t> arg(CB);
#pragma omp for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t cb = 0; cb < nCb; ++cb) {
        const int64_t c0 = cb * CB, c1 = c0 + CB < g.C ? c0 + CB : g.C;
        for (int64_t oh = 0; oh < g.OH; ++oh) {
          for (int64_t ow = 0; ow < g.OW; ++ow) {
            for (int64_t c = c0; c < c1; ++c) {
              best[c - c0] = -FLT_MAX;
              arg[c - c0] = -1;
            }
            ForEachWindowCell(g, n, oh, ow, [&](int64_t base) {
              for (int64_t c = c0; c < c1; ++c) {
                float v = x[base + c];
                if (v > best[c - c0] || arg[c - c0] < 0) {
                  best[c - c0] = v;
                  arg[c - c0] = base + c;
                }
              }
            });
            const float* g_dy = dy + ((n * g.OH + oh) * g.OW + ow) * g.C;
            for (int64_t c = c0; c < c1; ++c) {
              if (arg[c - c0] >= 0) dx[arg[c - c0]] += g_dy[c];
            }
          }
        }
      }
    }
  }
  return info.Env().Undefined();
}

}  // namespace dptrain_native
