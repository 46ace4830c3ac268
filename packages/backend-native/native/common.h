// Shared setup of the native kernels: the oneDNN engine and stream, argument checks, memory-descriptor helpers, the
// primitive caches, and the layout / algorithm / precision settings. Every entry point is synchronous and works in
// place on the caller's Float32Arrays (zero-copy): the JS side allocates the output array and passes it in.
#pragma once

#include <napi.h>
#include <omp.h>

#include <dnnl.hpp>

#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace dptrain_native {

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

engine& Eng();
stream& Strm();

// The Float32Array argument `v` (TypeError naming `what` otherwise), and its length.
float* F32(const Napi::Value& v, const char* what);
size_t Len(const Napi::Value& v);
// An array of `n` integers (TypeError naming `what` otherwise).
std::vector<int64_t> Dims(const Napi::Value& v, size_t n, const char* what);
int64_t Prod(const std::vector<int64_t>& d);
// RangeError naming `what` when the Float32Array `v` holds fewer than `want` values.
void CheckLen(const Napi::Value& v, int64_t want, const char* what);
// A primitive-cache key: `kind` and the integers, colon-separated.
std::string Key(const char* kind, std::initializer_list<int64_t> xs);

memory::desc Nhwc(const memory::dims& d);
memory::desc Any(const memory::dims& d);
// Activation layout asked of oneDNN: NHWC (g_anyAct false) or oneDNN's choice.
memory::desc Act(const memory::dims& d);
// Memory descriptor like `d` with data type `t`.
memory::desc As(const memory::desc& d, dt t);

// Settings (setActivationLayout, setConvAlgorithm, setPrecision); a change clears the primitive caches.
extern bool g_anyAct;
extern bool g_winograd;
// bf16: the multiplied operands (activations, weights, upstream gradients) reordered to bf16, accumulated and
// written in fp32 (outputs and gradients stay Float32Arrays). Needs a CPU with AVX512-BF16 or AMX.
extern bool g_bf16;

// bf16 policy (setBf16Policy): which convolutions stay fp32 in bf16 mode because fp32 is faster for them
// (bench/conv-precision.ts). g_bf16Depthwise: depthwise convolutions run bf16 too (default false: memory-bound, the
// reorders cost more than bf16 saves). g_bf16MinIntensity: a convolution runs bf16 only when its FLOPs per activation
// value read or written, 2 kh kw Cin Cout / (Cin + Cout), reach this (default 24).
extern bool g_bf16Depthwise;
extern double g_bf16MinIntensity;

// "amx", "avx512_bf16", or "" when oneDNN may not use bf16 instructions on this CPU.
std::string Bf16Isa();
// Kernels that ran fp32 in bf16 mode by the policy (faster so), each with its reason ("dw_fwd: depthwise",
// "conv_fwd: intensity < 24", "conv_bwd_weights: winograd").
std::set<std::string>& Bf16Fp32ByChoice();
// Kernels (conv_fwd, conv_bwd_data, conv_bwd_weights, matmul; depthwise ones as dw_*) that ran fp32 in bf16 mode
// because oneDNN 2.6 has no bf16 implementation for them (or only its slow reference one).
std::set<std::string>& Bf16Fallbacks();
// oneDNN's implementation name of each kernel's last primitive (for info()).
std::unordered_map<std::string, std::string>& ImplNames();

// make(dt) builds a primitive descriptor whose multiplied operands have that data type. In bf16 mode bf16 is tried
// first; where oneDNN has no bf16 kernel for it (it throws `unimplemented`) or only its reference loops, fp32.
// kernel "": fp32 by choice (faster), not for lack of a bf16 kernel.
template <class F>
auto Bf16OrF32(const std::string& kernel, F make) -> decltype(make(dt::f32)) {
  if (g_bf16 && !kernel.empty()) {
    try {
      auto pd = make(dt::bf16);
      if (std::string(pd.impl_info_str()).rfind("ref", 0) != 0) return pd;
    } catch (const dnnl::error& e) {
      if (e.status != dnnl_unimplemented) throw;
    }
    Bf16Fallbacks().insert(kernel);
  }
  return make(dt::f32);
}

// A buffer in oneDNN's preferred layout plus the reorder that fills / drains it (weights, activations, operands).
struct WeiSlot {
  bool needed = false;
  memory mem;
  reorder re;
};
// The slot for a primitive that wants `want` where the user has `user` (toUser: drained into the user's buffer).
WeiSlot MakeWeiSlot(const memory::desc& want, const memory::desc& user, bool toUser);
// The memory a primitive reads: the user's buffer, or the slot after reordering the user's buffer into it.
memory In(WeiSlot& slot, const memory::desc& user, const memory::desc& mine, float* p, stream& s);
// The memory a primitive writes: the user's buffer, or the slot (drained with Out2User after the primitive ran).
memory Out(WeiSlot& slot, const memory::desc& mine, float* p);
void Out2User(WeiSlot& slot, const memory::desc& user, float* p, stream& s);

// The filter memory a convolution reads (filter-copies.cc): like In(), but the reordered copy is kept with the
// filter's identity `id` (a number per tfjs tensor, from the JS side; 0: unknown, nothing kept) and reused by the
// next call on the same filter and geometry in this layout, or reordered from a copy in another layout (bf16 to bf16:
// half the bytes of the fp32 filter). Same values as In(): reorders only move values or round them to bf16.
memory FilterIn(const std::string& geometry, double id, WeiSlot& slot, const memory::desc& user, const memory::desc& want,
                float* p, stream& s);
void ClearFilterCopies();
// Copies kept per convolution geometry (setFilterCopies; 0: none): enough for the layers of one shape whose forward
// and backward passes overlap (VGG16's block5: 3 layers, in bf16 3 forward + 2 backward-data copies; 4.7 MB each in
// bf16, 9.4 MB in fp32). Default 6.
extern size_t g_filterCopies;
// Calls that made a filter copy from the Float32Array (converted: of those, by Bf16FilterFromHwio), reused one, or
// derived one from a copy in another layout.
struct FilterCopyCounts {
  double made = 0, converted = 0, reused = 0, derived = 0;
};
FilterCopyCounts& FilterCopyStats();
// Writes `dst` (layout `want`) from the fp32 filter `p` (layout `user`) with one AVX512-BF16 pass (filter-layouts.cc) and
// returns true where it can: HWIO to oneDNN's AcdB16b32a2b, channel counts multiples of 32; false: nothing written.
bool Bf16FilterFromHwio(const float* p, const memory::desc& user, const memory::desc& want, memory& dst);
// Moves the fp32 filter between HWIO (`hwio`, layout `user`) and oneDNN's ABcd16b16a (`mem`, layout `blocked`) by
// 64-byte rows, either way; false (nothing moved) for other layouts or channel counts not multiples of 16.
bool F32FilterRows(float* hwio, const memory::desc& user, const memory::desc& blocked, memory& mem, bool toHwio);

// The order of the addon's sums over rows (reduceSum over a leading axis, the batch-norm gradient's two sums): the
// rows [0, rows) are cut into one contiguous share per OpenMP thread, [rows t / T, rows (t + 1) / T); each thread
// adds its rows in order into float64 partials of its own (`addRow(row, partials)`, `width` values), and the
// partials are then added in thread order into `out` (`width` float64 values). The bits depend on the thread count
// only; two kernels that sum through this give the same bits for the same values.
template <class AddRow>
void SumRowsInThreadOrder(int64_t rows, int64_t width, bool parallel, AddRow addRow, double* out) {
  const int nt = omp_get_max_threads();
  std::vector<double> partial(static_cast<size_t>(nt) * width, 0.0);
#pragma omp parallel if (parallel)
  {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    double* acc = partial.data() + static_cast<size_t>(t) * width;
    for (int64_t r = rows * t / T, end = rows * (t + 1) / T; r < end; ++r) addRow(r, acc);
  }
  for (int64_t k = 0; k < width; ++k) {
    double sum = 0;
    for (int t = 0; t < nt; ++t) sum += partial[static_cast<size_t>(t) * width + k];
    out[k] = sum;
  }
}

// One cache of built primitives per entry type, by shape key.
template <class T>
std::unordered_map<std::string, std::unique_ptr<T>>& Cache() {
  static std::unordered_map<std::string, std::unique_ptr<T>> c;
  return c;
}
// The cached entry for `key`; on a miss make() builds it (a std::unique_ptr<T>), the cache being emptied first when
// it holds more than 256 entries. The one home of the primitive-setup bookkeeping of every oneDNN kernel.
template <class T, class Make>
T& CachedEntry(const std::string& key, Make make) {
  auto& cache = Cache<T>();
  auto it = cache.find(key);
  if (it == cache.end()) {
    if (cache.size() > 256) cache.clear();
    it = cache.emplace(key, make()).first;
  }
  return *it->second;
}

// The kernel families' entry points (one .cc file each, as the TypeScript kernel files) and their cache resets.
Napi::Value Conv2D(const Napi::CallbackInfo& info);
Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info);
Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info);
// The convolution primitives depend on the layout and algorithm settings: rebuilt on next use after a change.
void ClearConvCaches();
Napi::Value MatMul(const Napi::CallbackInfo& info);
void ClearMatMulCache();
Napi::Value MaxPool(const Napi::CallbackInfo& info);
Napi::Value MaxPoolGrad(const Napi::CallbackInfo& info);
Napi::Value Binary(const Napi::CallbackInfo& info);
Napi::Value BinaryStrided(const Napi::CallbackInfo& info);
Napi::Value Unary(const Napi::CallbackInfo& info);
Napi::Value ReduceSum(const Napi::CallbackInfo& info);
Napi::Value BatchNorm(const Napi::CallbackInfo& info);
Napi::Value BatchNormGrad(const Napi::CallbackInfo& info);
Napi::Value ClipGrad(const Napi::CallbackInfo& info);
Napi::Value Pad(const Napi::CallbackInfo& info);
Napi::Value Slice(const Napi::CallbackInfo& info);
Napi::Value Tile(const Napi::CallbackInfo& info);
Napi::Value AdamUpdate(const Napi::CallbackInfo& info);
// The exchange's gradient merge and finiteness check (merge.cc; TS side: core/src/training/vector-kernels.ts).
Napi::Value MergeTwo(const Napi::CallbackInfo& info);
Napi::Value FirstNonFinite(const Napi::CallbackInfo& info);
Napi::Value BucketSumsOfSquares(const Napi::CallbackInfo& info);

}  // namespace dptrain_native
