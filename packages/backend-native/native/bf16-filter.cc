// The fp32 HWIO filter (tfjs's layout) to the bf16 blocked layout of oneDNN's AMX / AVX512-BF16 forward convolutions
// (AcdB16b32a2b), in one AVX512-BF16 pass. oneDNN's generic reorder took 3.7 ms for a VGG16 block5 filter (2.4 M
// values, cold caches, one thread) where this takes about as long as reading the filter once; the values are the
// same (round to nearest even, the instruction oneDNN's reorder uses; filter-copies.test.ts compares the bits).
#include <immintrin.h>

#include "common.h"

namespace dptrain_native {
namespace {

// dst = AcdB16b32a2b of the filter dims {O, I, KH, KW}: blocks of 32 output x 32 input channels, ordered
// [O / 32][KH][KW][I / 32], each [input pair (16)][output channel (32)][pair member (2)].
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void HwioToAcdB16b32a2b(const float* src, uint16_t* dst, int64_t O,
                                                                                int64_t I, int64_t HW) {
  alignas(64) static const uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                                       8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  const int64_t OB = O / 32, IB = I / 32;
#pragma omp parallel for schedule(static) if (OB * HW * IB > 64)
  for (int64_t blk = 0; blk < OB * HW * IB; ++blk) {
    const int64_t ib = blk % IB, hw = (blk / IB) % HW, ob = blk / (IB * HW);
    uint16_t* d = dst + blk * 1024;
    const float* s = src + (hw * I + ib * 32) * O + ob * 32;
    for (int pair = 0; pair < 16; ++pair) {
      const float* r0 = s + 2 * pair * O;  // input channel 2 pair, its 32 output channels
      const float* r1 = r0 + O;            // input channel 2 pair + 1
      for (int half = 0; half < 2; ++half) {
        const __m512 a = _mm512_loadu_ps(r0 + 16 * half), b = _mm512_loadu_ps(r1 + 16 * half);
        const __m512i ab = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a));  // words 0-15: a, 16-31: b
        _mm512_storeu_si512(d + pair * 64 + half * 32, _mm512_permutexvar_epi16(interleave, ab));
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

}  // namespace dptrain_native
