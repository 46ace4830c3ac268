// Filter layout conversions that oneDNN 2.6's generic reorder does slowly here (filter-copies.cc and the filter
// gradient use them). The fp32 HWIO filter (tfjs's layout) to the bf16 blocked layout of oneDNN's AMX / AVX512-BF16 forward convolutions
// (AcdB16b32a2b), in one AVX512-BF16 pass. oneDNN's generic reorder took 3.1-3.7 ms for a VGG16 block5 filter (2.4 M
// values, cold caches, one thread), this 1.1 ms; the values are the
// same (round to nearest even, the instruction oneDNN's reorder uses; filter-copies.test.ts compares the bits).
#include <immintrin.h>

#include "common.h"

namespace dptrain_native {
namespace {

// dst = AcdB16b32a2b of the filter dims {O, I, KH, KW}: blocks of 32 output x 32 input channels, ordered
// [O / 32][KH][KW][I / 32], each [input pair (16)][output channel (32)][pair member (2)]. The loops read the source
// in order and scatter 128-byte rows (cold caches, VGG16 block5, one thread: 1.1 ms; in the destination's order 1.6 ms).
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void HwioToAcdB16b32a2b(const float* src, uint16_t* dst, int64_t O,
                                                                                int64_t I, int64_t HW) {
  alignas(64) static const uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  const int64_t OB = O / 32, IB = I / 32, pairs = I / 2;
#pragma omp parallel for schedule(static) if (HW * pairs > 256)
  for (int64_t row = 0; row < HW * pairs; ++row) {
    const int64_t hw = row / pairs, ip = row % pairs, ib = ip / 16, pair = ip % 16;
    const float* r0 = src + (hw * I + 2 * ip) * O;  // input channel 2 ip, all output channels
    const float* r1 = r0 + O;                       // input channel 2 ip + 1
    for (int64_t ob = 0; ob < OB; ++ob) {
      uint16_t* d = dst + ((ob * HW + hw) * IB + ib) * 1024 + pair * 64;
      for (int half = 0; half < 2; ++half) {
        const __m512 a = _mm512_loadu_ps(r0 + ob * 32 + 16 * half), b = _mm512_loadu_ps(r1 + ob * 32 + 16 * half);
        const __m512i ab = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a));  // words 0-15: a, 16-31: b
        _mm512_storeu_si512(d + half * 32, _mm512_permutexvar_epi16(interleave, ab));
      }
    }
  }
}

// Between HWIO and ABcd16b16a (fp32 blocks of 16 output x 16 input channels, [O / 16][I / 16][KH][KW][input 16][output
// 16]: the layout of fp32 Winograd filters and of oneDNN's filter gradients): each block row of 16 output channels is
// 16 contiguous values of HWIO, so the conversion moves 64-byte rows, in HWIO's order (cold caches, VGG16 block5, one
// thread: 2.25 ms to ABcd16b16a and 1.86 ms back, oneDNN's reorders 2.87 and 2.31 ms).
void Abcd16b16aRows(float* hwio, float* blocked, int64_t O, int64_t I, int64_t HW, bool toHwio) {
  const int64_t OB = O / 16, IB = I / 16;
#pragma omp parallel for schedule(static) if (HW * I > 256)
  for (int64_t row = 0; row < HW * I; ++row) {
    const int64_t hw = row / I, i = row % I;
    float* h = hwio + row * O;
    float* b = blocked + ((i / 16) * HW + hw) * 256 + (i % 16) * 16;
    for (int64_t ob = 0; ob < OB; ++ob) {
      if (toHwio) {
        std::memcpy(h + ob * 16, b + ob * IB * HW * 256, 64);
      } else {
        std::memcpy(b + ob * IB * HW * 256, h + ob * 16, 64);
      }
    }
  }
}

bool HasAvx512Bf16() {
  static const bool has = __builtin_cpu_supports("avx512bf16");
  return has;
}

}  // namespace

bool Bf16FilterFromHwio(const float* p, const memory::desc& user, const memory::desc& want, memory& dst) {
  const memory::dims d = want.dims();
  if (d.size() != 4 || d[0] % 32 != 0 || d[1] % 32 != 0 || !HasAvx512Bf16()) return false;
  if (user != memory::desc(d, dt::f32, tag::hwio) || want != memory::desc(d, dt::bf16, tag::AcdB16b32a2b)) return false;
  HwioToAcdB16b32a2b(p, static_cast<uint16_t*>(dst.get_data_handle()), d[0], d[1], d[2] * d[3]);
  return true;
}

bool F32FilterRows(float* hwio, const memory::desc& user, const memory::desc& blocked, memory& mem, bool toHwio) {
  const memory::dims d = blocked.dims();
  if (d.size() != 4 || d[0] % 16 != 0 || d[1] % 16 != 0) return false;
  if (user != memory::desc(d, dt::f32, tag::hwio) || blocked != memory::desc(d, dt::f32, tag::ABcd16b16a)) return false;
  Abcd16b16aRows(hwio, static_cast<float*>(mem.get_data_handle()), d[0], d[1], d[2] * d[3], toHwio);
  return true;
}

}  // namespace dptrain_native
