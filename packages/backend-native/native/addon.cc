// dptrain native kernels: oneDNN convolutions / matmul + hand-written NHWC loops. This file registers the entry
// points and holds the settings; the kernels live in one file per family, as the TypeScript side (src/kernels/):
// conv.cc, matmul.cc, pool.cc, elementwise.cc, norm-pad.cc, plus adam.cc, merge.cc (the exchange's gradient merge)
// and the shared setup in common.h/.cc.
// Every entry point is synchronous and works in place on the caller's Float32Arrays (zero-copy):
// the JS side allocates the output array and passes it in.
#include <malloc.h>

#include "common.h"

namespace dptrain_native {
namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n > 0) omp_set_num_threads(n);
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}
Napi::Value SetActivationLayout(const Napi::CallbackInfo& info) {
  bool any = info[0].As<Napi::String>().Utf8Value() == "any";
  if (any != g_anyAct) {
    g_anyAct = any;
    ClearConvCaches();
  }
  return Napi::String::New(info.Env(), g_anyAct ? "any" : "nhwc");
}
// A setting's string argument: true for `a`, false for `b`; a RangeError naming `fn` for anything else.
bool IsFirstOf(const Napi::CallbackInfo& info, const char* fn, const std::string& a, const std::string& b) {
  auto want = info[0].As<Napi::String>().Utf8Value();
  if (want != a && want != b) throw Napi::RangeError::New(info.Env(), std::string(fn) + ": '" + want + "' is not '" + a + "' or '" + b + "'");
  return want == a;
}
Napi::Value SetConvAlgorithm(const Napi::CallbackInfo& info) {
  bool wino = IsFirstOf(info, "setConvAlgorithm", "winograd", "direct");
  if (wino != g_winograd) {
    g_winograd = wino;
    ClearConvCaches();
  }
  return Napi::String::New(info.Env(), g_winograd ? "winograd" : "direct");
}
Napi::Value SetFilterCopies(const Napi::CallbackInfo& info) {
  const int64_t n = info[0].As<Napi::Number>().Int64Value();
  if (n < 0) throw Napi::RangeError::New(info.Env(), "setFilterCopies: the number of copies must be >= 0");
  if (static_cast<size_t>(n) != g_filterCopies) {
    g_filterCopies = static_cast<size_t>(n);
    ClearFilterCopies();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(g_filterCopies));
}
Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  bool bf16 = !IsFirstOf(info, "setPrecision", "fp32", "bf16");
  if (bf16 && Bf16Isa().empty()) {
    throw Napi::Error::New(info.Env(), "setPrecision: this CPU has neither AVX512-BF16 nor AMX (oneDNN ISA " +
                                           std::to_string(static_cast<int>(get_effective_cpu_isa())) + ")");
  }
  if (bf16 != g_bf16) {
    g_bf16 = bf16;
    ClearConvCaches();
    ClearMatMulCache();
    Bf16Fallbacks().clear();
    Bf16Fp32ByChoice().clear();
  }
  return Napi::String::New(info.Env(), g_bf16 ? "bf16" : "fp32");
}
// setBf16Policy(depthwise: boolean, minIntensity: number) -> { depthwise, minIntensity } now in effect.
Napi::Object Bf16Policy(Napi::Env env) {
  auto o = Napi::Object::New(env);
  o.Set("depthwise", g_bf16Depthwise);
  o.Set("minIntensity", g_bf16MinIntensity);
  return o;
}
Napi::Value SetBf16Policy(const Napi::CallbackInfo& info) {
  const bool depthwise = info[0].ToBoolean();
  const double minIntensity = info[1].As<Napi::Number>().DoubleValue();
  if (!(minIntensity >= 0)) throw Napi::RangeError::New(info.Env(), "setBf16Policy: minIntensity must be a number >= 0");
  if (depthwise != g_bf16Depthwise || minIntensity != g_bf16MinIntensity) {
    g_bf16Depthwise = depthwise;
    g_bf16MinIntensity = minIntensity;
    ClearConvCaches();
    Bf16Fp32ByChoice().clear();
  }
  return Bf16Policy(info.Env());
}
Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}
Napi::Value Info(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  const dnnl_version_t* v = dnnl_version();
  o.Set("dnnl", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  o.Set("cpuRuntime", v->cpu_runtime == DNNL_RUNTIME_OMP ? "omp" : v->cpu_runtime == DNNL_RUNTIME_TBB ? "tbb" : "other");
  o.Set("threads", omp_get_max_threads());
  o.Set("isa", std::to_string(static_cast<int>(get_effective_cpu_isa())));
  o.Set("bf16Isa", Bf16Isa());
  o.Set("precision", g_bf16 ? "bf16" : "fp32");
  auto fallbacks = Napi::Array::New(env);
  uint32_t i = 0;
  for (auto& k : Bf16Fallbacks()) fallbacks.Set(i++, k);
  o.Set("bf16Fallbacks", fallbacks);
  auto byChoice = Napi::Array::New(env);
  i = 0;
  for (auto& k : Bf16Fp32ByChoice()) byChoice.Set(i++, k);
  o.Set("bf16Fp32", byChoice);
  o.Set("bf16Policy", Bf16Policy(env));
  auto impl = Napi::Object::New(env);
  for (auto& kv : ImplNames()) impl.Set(kv.first, kv.second);
  o.Set("impl", impl);
  auto copies = Napi::Object::New(env);
  copies.Set("made", FilterCopyStats().made);
  copies.Set("converted", FilterCopyStats().converted);
  copies.Set("reused", FilterCopyStats().reused);
  copies.Set("derived", FilterCopyStats().derived);
  o.Set("filterCopies", copies);
  return o;
}
Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  ClearConvCaches();
  ClearMatMulCache();
  return info.Env().Undefined();
}

// Turn oneDNN's exceptions into JS errors with the status.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guard(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const dnnl::error& e) {
    throw Napi::Error::New(info.Env(), std::string("oneDNN: ") + e.what() + " (status " + std::to_string(e.status) + ")");
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Kernel outputs are large, short-lived ArrayBuffers (calloc'd by node). Keep freed blocks in the heap instead of
  // unmapping them, so the next step reuses them without page faults (about -10% CPU per fine-tune step).
  // DPTRAIN_NATIVE_MALLOC=0 leaves glibc's defaults.
  const char* m = std::getenv("DPTRAIN_NATIVE_MALLOC");
  if (!(m && std::string(m) == "0")) {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  }
  exports.Set("conv2d", Napi::Function::New(env, Guard<Conv2D>));
  exports.Set("conv2dBackpropInput", Napi::Function::New(env, Guard<Conv2DBackpropInput>));
  exports.Set("conv2dBackpropFilter", Napi::Function::New(env, Guard<Conv2DBackpropFilter>));
  exports.Set("matMul", Napi::Function::New(env, Guard<MatMul>));
  exports.Set("maxPool", Napi::Function::New(env, Guard<MaxPool>));
  exports.Set("maxPoolGrad", Napi::Function::New(env, Guard<MaxPoolGrad>));
  exports.Set("binary", Napi::Function::New(env, Guard<Binary>));
  exports.Set("binaryStrided", Napi::Function::New(env, Guard<BinaryStrided>));
  exports.Set("unary", Napi::Function::New(env, Guard<Unary>));
  exports.Set("reduceSum", Napi::Function::New(env, Guard<ReduceSum>));
  exports.Set("pad", Napi::Function::New(env, Guard<Pad>));
  exports.Set("slice", Napi::Function::New(env, Guard<Slice>));
  exports.Set("tile", Napi::Function::New(env, Guard<Tile>));
  exports.Set("batchNorm", Napi::Function::New(env, Guard<BatchNorm>));
  exports.Set("batchNormGrad", Napi::Function::New(env, Guard<BatchNormGrad>));
  exports.Set("clipGrad", Napi::Function::New(env, Guard<ClipGrad>));
  exports.Set("adamUpdate", Napi::Function::New(env, Guard<AdamUpdate>));
  exports.Set("mergeTwo", Napi::Function::New(env, MergeTwo));
  exports.Set("firstNonFinite", Napi::Function::New(env, FirstNonFinite));
  exports.Set("bucketSumsOfSquares", Napi::Function::New(env, BucketSumsOfSquares));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("setActivationLayout", Napi::Function::New(env, SetActivationLayout));
  exports.Set("setConvAlgorithm", Napi::Function::New(env, SetConvAlgorithm));
  exports.Set("setFilterCopies", Napi::Function::New(env, SetFilterCopies));
  exports.Set("setPrecision", Napi::Function::New(env, Guard<SetPrecision>));
  exports.Set("setBf16Policy", Napi::Function::New(env, Guard<SetBf16Policy>));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("info", Napi::Function::New(env, Guard<Info>));
  exports.Set("clearCache", Napi::Function::New(env, ClearCache));
  return exports;
}

}  // namespace
}  // namespace dptrain_native

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return dptrain_native::Init(env, exports); }

NODE_API_MODULE(dptrain_native, InitAddon)
