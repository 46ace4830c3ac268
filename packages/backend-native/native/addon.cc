// dptrain native kernels: oneDNN convolutions / matmul + hand-written NHWC max pooling.
// Every entry point is synchronous and works in place on the caller's Float32Arrays (zero-copy):
// the JS side allocates the output array and passes it in.
#include <napi.h>
#include <malloc.h>
#include <omp.h>

#include <dnnl.hpp>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

engine& Eng() {
  static engine eng(engine::kind::cpu, 0);
  return eng;
}
stream& Strm() {
  static stream s(Eng());
  return s;
}

float* F32(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Float32Array");
  }
  return v.As<Napi::Float32Array>().Data();
}
size_t Len(const Napi::Value& v) { return v.As<Napi::Float32Array>().ElementLength(); }

std::vector<int64_t> Dims(const Napi::Value& v, size_t n, const char* what) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != n) {
    throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of " + std::to_string(n) + " ints");
  }
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = a.Get(static_cast<uint32_t>(i)).As<Napi::Number>().Int64Value();
  return out;
}
int64_t Prod(const std::vector<int64_t>& d) {
  int64_t p = 1;
  for (auto x : d) p *= x;
  return p;
}
void CheckLen(const Napi::Value& v, int64_t want, const char* what) {
  if (static_cast<int64_t>(Len(v)) < want) {
    throw Napi::RangeError::New(v.Env(), std::string(what) + " is too short: " + std::to_string(Len(v)) + " < " +
                                             std::to_string(want));
  }
}

std::string Key(const char* kind, std::initializer_list<int64_t> xs) {
  std::string k(kind);
  for (auto x : xs) {
    k += ':';
    k += std::to_string(x);
  }
  return k;
}

// Geometry of one 2-D convolution, as tfjs describes it (NHWC input, HWIO filter; depthwise: [kh, kw, C, M]).
struct ConvGeom {
  memory::dims src, wei, dst, bias, strides, dil, padL, padR;
  memory::desc userWei;  // the filter as tfjs stores it
  std::string key;
  bool depthwise = false;
};

// Runs its scope with `n` OpenMP threads, then restores the process's count. oneDNN sizes a primitive's thread
// split when the primitive is created, so both creation and execution run inside the scope.
class OmpThreadsScope {
 public:
  explicit OmpThreadsScope(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~OmpThreadsScope() { omp_set_num_threads(saved_); }
  OmpThreadsScope(const OmpThreadsScope&) = delete;
  OmpThreadsScope& operator=(const OmpThreadsScope&) = delete;

 private:
  int saved_;
};

// args: xShape[4] wShape[4] yShape[4] conv[8|9] = [sh, sw, pt, pl, pb, pr, dh, dw, (depthwise? 1 : 0)]
// Depthwise filters [kh, kw, C, M] run as a grouped convolution (groups = C, M outputs per group; output channel
// c * M + m as in tfjs).
ConvGeom Geom(const Napi::CallbackInfo& info, int xi, int wi, int yi, int ci) {
  auto xs = Dims(info[xi], 4, "xShape");
  auto ws = Dims(info[wi], 4, "filterShape");
  auto ys = Dims(info[yi], 4, "yShape");
  bool dw = info[ci].IsArray() && info[ci].As<Napi::Array>().Length() == 9;
  auto c = Dims(info[ci], dw ? 9 : 8, "conv");
  dw = dw && c[8] != 0;
  ConvGeom g;
  g.depthwise = dw;
  g.src = {xs[0], xs[3], xs[1], xs[2]};
  g.dst = {ys[0], ys[3], ys[1], ys[2]};
  if (dw) {
    const int64_t KH = ws[0], KW = ws[1], C = ws[2], M = ws[3];
    g.wei = {C, M, 1, KH, KW};
    g.userWei = memory::desc(g.wei, dt::f32, memory::dims{M, 1, 1, KW * C * M, C * M});
  } else {
    g.wei = {ws[3], ws[2], ws[0], ws[1]};
    g.userWei = memory::desc(g.wei, dt::f32, tag::hwio);
  }
  g.bias = {ys[3]};
  g.strides = {c[0], c[1]};
  g.padL = {c[2], c[3]};
  g.padR = {c[4], c[5]};
  g.dil = {c[6] - 1, c[7] - 1};
  g.key = Key(dw ? "dw" : "g", {xs[0], xs[1], xs[2], xs[3], ws[0], ws[1], ws[2], ws[3], ys[1], ys[2], c[0], c[1], c[2],
                                c[3], c[4], c[5], c[6], c[7]});
  return g;
}

memory::desc Nhwc(const memory::dims& d) { return memory::desc(d, dt::f32, tag::nhwc); }
memory::desc Any(const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); }
// Activation layout asked of oneDNN: NHWC as tfjs stores it (no reorders), or 'any' (oneDNN's blocked layout,
// reordered from/to NHWC around each call). Set with setActivationLayout().
bool g_anyAct = false;
memory::desc Act(const memory::dims& d) { return g_anyAct ? Any(d) : Nhwc(d); }

// 3x3 stride-1 convolutions run as Winograd F(4x4, 3x3) where oneDNN implements it for the shape (not depthwise;
// channel counts it supports): fewer multiplications, 1.3x (VGG16 block5, 9x9) to 2.6x (block1, 150x150) faster than
// direct here, forward and both gradients. Its bits do not depend on the thread count (checked by the tests), and it
// needs oneDNN's blocked activation layout (reordered from/to NHWC around the call). Set with setConvAlgorithm().
bool g_winograd = true;
// Not for fewer than 16 input or output channels: VGG16's first layer (3 -> 64 at 150x150) takes 15 ms as Winograd
// plus 5 ms of layout reorders, 7.7 ms direct on NHWC.
bool WinogradShape(const ConvGeom& g, dt m) {
  return g_winograd && m == dt::f32 && !g.depthwise && g.wei.size() == 4 && g.wei[2] == 3 && g.wei[3] == 3 && g.strides[0] == 1 &&
         g.strides[1] == 1 && g.dil[0] == 0 && g.dil[1] == 0 && g.src[1] >= 16 && g.dst[1] >= 16;
}
// make(algorithm) builds a primitive descriptor; Winograd is tried first for the shapes above, and where oneDNN
// has no Winograd kernel for them (it throws `unimplemented`) the direct algorithm is used.
// Winograd stays fp32 (oneDNN 2.6 has no bf16 Winograd): `m` is the data type of the multiplied operands.
template <class F>
auto WinogradOrDirect(const ConvGeom& g, dt m, F make) -> decltype(make(algorithm::convolution_direct)) {
  if (WinogradShape(g, m)) {
    try {
      return make(algorithm::convolution_winograd);
    } catch (const dnnl::error& e) {
      if (e.status != dnnl_unimplemented) throw;
    }
  }
  return make(algorithm::convolution_direct);
}
// Activation layout for algorithm `a`: Winograd always takes oneDNN's blocked layout.
memory::desc ActFor(algorithm a, const memory::dims& d) { return a == algorithm::convolution_winograd ? Any(d) : Act(d); }

// Precision of the convolutions and matmuls (setPrecision): fp32, or bf16 = the multiplied operands (activations,
// weights, upstream gradients) reordered to bf16, accumulated and written in fp32 (outputs, input and weight
// gradients stay Float32Arrays). bf16 needs a CPU with AVX512-BF16 or AMX.
bool g_bf16 = false;
// bf16 mode: filter gradients of Winograd-shaped convolutions with at least this many output pixels (H x W) run fp32
// Winograd (faster there, see Conv2DBackpropFilter).
constexpr int64_t kBf16WinogradMinOutput = 24 * 24;
// "amx", "avx512_bf16", or "" when oneDNN may not use bf16 instructions on this CPU.
std::string Bf16Isa() {
  const cpu_isa isa = get_effective_cpu_isa();
  if (isa == cpu_isa::avx512_core_amx) return "amx";
  if (isa == cpu_isa::avx512_core_bf16) return "avx512_bf16";
  return "";
}
// Kernels (conv_fwd, conv_bwd_data, conv_bwd_weights, matmul; depthwise ones as dw_*) that ran fp32 in bf16 mode
// because oneDNN 2.6 has no bf16 implementation for them (or only its slow reference one).
std::set<std::string>& Bf16Fallbacks() {
  static std::set<std::string> s;
  return s;
}
// Memory descriptor like `d` with data type `t`.
memory::desc As(const memory::desc& d, dt t) {
  if (d.data_type() == t) return d;
  memory::desc out = d;
  out.data.data_type = static_cast<dnnl_data_type_t>(t);
  return out;
}
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

// act: 0 linear, 1 relu, 2 relu6. m: data type of x and the filter (the output and bias are fp32).
convolution_forward::primitive_desc FwdPd(const ConvGeom& g, bool bias, int act, dt m) {
  primitive_attr attr;
  if (act != 0) {
    post_ops po;
    if (act == 2) {
      po.append_eltwise(1.f, algorithm::eltwise_clip, 0.f, 6.f);
    } else {
      po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
    }
    attr.set_post_ops(po);
  }
  return WinogradOrDirect(g, m, [&](algorithm a) {
    auto src = As(ActFor(a, g.src), m), wei = As(Any(g.wei), m);
    auto d = bias ? convolution_forward::desc(prop_kind::forward_training, a, src, wei,
                                              memory::desc(g.bias, dt::f32, tag::x), ActFor(a, g.dst), g.strides,
                                              g.dil, g.padL, g.padR)
                  : convolution_forward::desc(prop_kind::forward_training, a, src, wei, ActFor(a, g.dst), g.strides,
                                              g.dil, g.padL, g.padR);
    return convolution_forward::primitive_desc(d, attr, Eng());
  });
}

// A weight buffer in oneDNN's preferred layout plus the reorder that fills / drains it.
struct WeiSlot {
  bool needed = false;
  memory mem;
  reorder re;
};
WeiSlot MakeWeiSlot(const memory::desc& want, const memory::desc& user, bool toUser) {
  WeiSlot s;
  if (want != user) {
    s.needed = true;
    s.mem = memory(want, Eng());
    memory u(user, Eng(), DNNL_MEMORY_NONE);
    s.re = toUser ? reorder(s.mem, u) : reorder(u, s.mem);
  }
  return s;
}

struct FwdEntry {
  memory::desc src, wei, dst, bias;
  convolution_forward prim;
  WeiSlot w, x, y;
};
struct BwdDataEntry {
  memory::desc diffDst, wei, diffSrc;
  convolution_backward_data prim;
  WeiSlot w, dy, dx;
};
struct BwdWeiEntry {
  memory::desc src, diffDst, diffWei;
  convolution_backward_weights prim;
  WeiSlot w, x, dy;
};

// The memory a primitive reads: the user's buffer, or the slot after reordering the user's buffer into it.
memory In(WeiSlot& slot, const memory::desc& user, const memory::desc& mine, float* p, stream& s) {
  if (!slot.needed) return memory(mine, Eng(), p);
  memory u(user, Eng(), p);
  slot.re.execute(s, u, slot.mem);
  return slot.mem;
}
// The memory a primitive writes: the user's buffer, or the slot (drained with Out2User after the primitive ran).
memory Out(WeiSlot& slot, const memory::desc& mine, float* p) { return slot.needed ? slot.mem : memory(mine, Eng(), p); }
void Out2User(WeiSlot& slot, const memory::desc& user, float* p, stream& s) {
  if (slot.needed) {
    memory u(user, Eng(), p);
    slot.re.execute(s, slot.mem, u);
  }
}
struct MatMulEntry {
  memory::desc a, b, c, bias;  // a, b: the user's (strided fp32) operands
  matmul prim;
  WeiSlot ma, mb;  // bf16: the operands reordered into the primitive's bf16 layouts
};

template <class T>
std::unordered_map<std::string, std::unique_ptr<T>>& Cache() {
  static std::unordered_map<std::string, std::unique_ptr<T>> c;
  return c;
}
template <class T>
void TrimCache() {
  auto& c = Cache<T>();
  if (c.size() > 256) c.clear();
}

std::unordered_map<std::string, std::string>& ImplNames() {
  static std::unordered_map<std::string, std::string> m;
  return m;
}

// conv2d(x, xShape, w, wShape, bias|null, y, yShape, conv[8|9], act: bool (relu) | 0 linear, 1 relu, 2 relu6)
Napi::Value Conv2D(const Napi::CallbackInfo& info) {
  float* x = F32(info[0], "x");
  float* w = F32(info[2], "filter");
  bool hasBias = !info[4].IsNull() && !info[4].IsUndefined();
  float* b = hasBias ? F32(info[4], "bias") : nullptr;
  float* y = F32(info[5], "y");
  int act = info[8].IsNumber() ? info[8].As<Napi::Number>().Int32Value() : (info[8].ToBoolean() ? 1 : 0);
  if (act < 0 || act > 2) throw Napi::RangeError::New(info.Env(), "conv2d: activation must be 0, 1 or 2");
  ConvGeom g = Geom(info, 1, 3, 6, 7);
  CheckLen(info[0], Prod(g.src), "x");
  CheckLen(info[2], Prod(g.wei), "filter");
  CheckLen(info[5], Prod(g.dst), "y");
  if (hasBias) CheckLen(info[4], g.bias[0], "bias");
  std::string key = g.key + (hasBias ? ":b" : ":n") + ":a" + std::to_string(act);
  auto& cache = Cache<FwdEntry>();
  auto it = cache.find(key);
  if (it == cache.end()) {
    TrimCache<FwdEntry>();
    auto pd = Bf16OrF32(g.depthwise ? "dw_fwd" : "conv_fwd", [&](dt m) { return FwdPd(g, hasBias, act, m); });
    auto e = std::make_unique<FwdEntry>();
    e->src = pd.src_desc();
    e->dst = pd.dst_desc();
    e->wei = pd.weights_desc();
    if (hasBias) e->bias = pd.bias_desc();
    e->prim = convolution_forward(pd);
    e->w = MakeWeiSlot(pd.weights_desc(), g.userWei, false);
    e->x = MakeWeiSlot(pd.src_desc(), Nhwc(g.src), false);
    e->y = MakeWeiSlot(pd.dst_desc(), Nhwc(g.dst), true);
    ImplNames()[g.depthwise ? "dw_fwd" : "conv_fwd"] = pd.impl_info_str();
    it = cache.emplace(key, std::move(e)).first;
  }
  FwdEntry& e = *it->second;
  auto& s = Strm();
  memory mx = In(e.x, Nhwc(g.src), e.src, x, s), my = Out(e.y, e.dst, y);
  memory mw;
  if (e.w.needed) {
    memory uw(g.userWei, Eng(), w);
    e.w.re.execute(s, uw, e.w.mem);
    mw = e.w.mem;
  } else {
    mw = memory(e.wei, Eng(), w);
  }
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}};
  if (hasBias) args.emplace(DNNL_ARG_BIAS, memory(e.bias, Eng(), b));
  e.prim.execute(s, args);
  Out2User(e.y, Nhwc(g.dst), y, s);
  s.wait();
  return info.Env().Undefined();
}

// conv2dBackpropInput(dy, dyShape, w, wShape, dx, dxShape, conv[8])
Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info) {
  float* dy = F32(info[0], "dy");
  float* w = F32(info[2], "filter");
  float* dx = F32(info[4], "dx");
  ConvGeom g = Geom(info, 5, 3, 1, 6);
  CheckLen(info[0], Prod(g.dst), "dy");
  CheckLen(info[2], Prod(g.wei), "filter");
  CheckLen(info[4], Prod(g.src), "dx");
  auto& cache = Cache<BwdDataEntry>();
  auto it = cache.find(g.key);
  if (it == cache.end()) {
    TrimCache<BwdDataEntry>();
    // Backward data measures faster on oneDNN's blocked layout than on NHWC (block5: 20 vs 26 ms), so it always asks for it.
    auto pd = Bf16OrF32(g.depthwise ? "dw_bwd_data" : "conv_bwd_data", [&](dt m) {
      auto hint = FwdPd(g, false, 0, m);
      return WinogradOrDirect(g, m, [&](algorithm a) {
        convolution_backward_data::desc d(a, Any(g.src), As(Any(g.wei), m), As(Any(g.dst), m), g.strides, g.dil, g.padL,
                                          g.padR);
        return convolution_backward_data::primitive_desc(d, Eng(), hint);
      });
    });
    auto e = std::make_unique<BwdDataEntry>();
    e->diffDst = pd.diff_dst_desc();
    e->diffSrc = pd.diff_src_desc();
    e->wei = pd.weights_desc();
    e->prim = convolution_backward_data(pd);
    e->w = MakeWeiSlot(pd.weights_desc(), g.userWei, false);
    e->dy = MakeWeiSlot(pd.diff_dst_desc(), Nhwc(g.dst), false);
    e->dx = MakeWeiSlot(pd.diff_src_desc(), Nhwc(g.src), true);
    ImplNames()[g.depthwise ? "dw_bwd_data" : "conv_bwd_data"] = pd.impl_info_str();
    it = cache.emplace(g.key, std::move(e)).first;
  }
  BwdDataEntry& e = *it->second;
  auto& s = Strm();
  memory mdy = In(e.dy, Nhwc(g.dst), e.diffDst, dy, s), mdx = Out(e.dx, e.diffSrc, dx);
  memory mw;
  if (e.w.needed) {
    memory uw(g.userWei, Eng(), w);
    e.w.re.execute(s, uw, e.w.mem);
    mw = e.w.mem;
  } else {
    mw = memory(e.wei, Eng(), w);
  }
  e.prim.execute(s, {{DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DIFF_SRC, mdx}});
  Out2User(e.dx, Nhwc(g.src), dx, s);
  s.wait();
  return info.Env().Undefined();
}

// conv2dBackpropFilter(x, xShape, dy, dyShape, dw, dwShape, conv[8])
Napi::Value Conv2DBackpropFilter(const Napi::CallbackInfo& info) {
  float* x = F32(info[0], "x");
  float* dy = F32(info[2], "dy");
  float* dw = F32(info[4], "dw");
  ConvGeom g = Geom(info, 1, 5, 3, 6);
  CheckLen(info[0], Prod(g.src), "x");
  CheckLen(info[2], Prod(g.dst), "dy");
  CheckLen(info[4], Prod(g.wei), "dw");
  // oneDNN's depthwise filter gradient splits the batch over threads and adds the partial sums, so its bits
  // depend on the thread count; on one thread it gives the same bits in every process (a worker with 1 thread,
  // an in-process run with all cores), which keeps `single --workers N` equal to `train`. It is a small kernel.
  // In bf16, oneDNN's filter gradients (AMX / AVX512-BF16) also split the batch over threads (a 1x1 conv's did, in the
  // tests), so every bf16 filter gradient runs on one thread.
  // The other convolution and matmul kernels give the same bits on 1 and 2 threads (checked by the tests).
  // In bf16 mode, a 3x3 stride-1 filter gradient with a large output (VGG16 blocks 1-3) stays fp32 Winograd:
  // oneDNN 2.6's AMX filter gradient is slower there (bench/conv-algorithms.cc, 1 thread, batch 8: 37x37x256
  // 778 ms bf16 vs 491 ms Winograd, 75x75x128 910 vs 599), faster at 18x18x512 (286 vs 730) and 9x9x512 (328 vs 525).
  const bool winoFaster = g_bf16 && WinogradShape(g, dt::f32) && g.dst[2] * g.dst[3] >= kBf16WinogradMinOutput;
  std::optional<OmpThreadsScope> oneThread;
  if (g.depthwise || (g_bf16 && !winoFaster)) oneThread.emplace(1);
  auto& cache = Cache<BwdWeiEntry>();
  auto it = cache.find(g.key);
  if (it == cache.end()) {
    TrimCache<BwdWeiEntry>();
    auto pd = Bf16OrF32(winoFaster ? "" : g.depthwise ? "dw_bwd_weights" : "conv_bwd_weights", [&](dt m) {
      auto hint = FwdPd(g, false, 0, m);
      return WinogradOrDirect(g, m, [&](algorithm a) {
        convolution_backward_weights::desc d(a, As(ActFor(a, g.src), m), Any(g.wei), As(ActFor(a, g.dst), m), g.strides,
                                             g.dil, g.padL, g.padR);
        return convolution_backward_weights::primitive_desc(d, Eng(), hint);
      });
    });
    auto e = std::make_unique<BwdWeiEntry>();
    e->src = pd.src_desc();
    e->diffDst = pd.diff_dst_desc();
    e->diffWei = pd.diff_weights_desc();
    e->prim = convolution_backward_weights(pd);
    e->w = MakeWeiSlot(pd.diff_weights_desc(), g.userWei, true);
    e->x = MakeWeiSlot(pd.src_desc(), Nhwc(g.src), false);
    e->dy = MakeWeiSlot(pd.diff_dst_desc(), Nhwc(g.dst), false);
    ImplNames()[g.depthwise ? "dw_bwd_weights" : "conv_bwd_weights"] = pd.impl_info_str();
    it = cache.emplace(g.key, std::move(e)).first;
  }
  BwdWeiEntry& e = *it->second;
  auto& s = Strm();
  memory mx = In(e.x, Nhwc(g.src), e.src, x, s), mdy = In(e.dy, Nhwc(g.dst), e.diffDst, dy, s);
  memory udw(g.userWei, Eng(), dw);
  memory mdw = e.w.needed ? e.w.mem : memory(e.diffWei, Eng(), dw);
  e.prim.execute(s, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_DIFF_WEIGHTS, mdw}});
  if (e.w.needed) e.w.re.execute(s, e.w.mem, udw);
  s.wait();
  return info.Env().Undefined();
}

// matMul(a, b, c, dims[6] = [batchA, batchB, M, N, K, bias?N:0], transA, transB, bias|null, relu)
// a: [batchA, M, K] (or [batchA, K, M] when transA), b: [batchB, K, N] (or [batchB, N, K] when transB),
// c: [max(batchA, batchB), M, N]. A batch of 1 broadcasts.
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  float* a = F32(info[0], "a");
  float* b = F32(info[1], "b");
  float* c = F32(info[2], "c");
  auto d = Dims(info[3], 5, "dims");
  bool ta = info[4].ToBoolean(), tb = info[5].ToBoolean();
  bool hasBias = !info[6].IsNull() && !info[6].IsUndefined();
  float* bias = hasBias ? F32(info[6], "bias") : nullptr;
  bool relu = info[7].ToBoolean();
  int64_t BA = d[0], BB = d[1], M = d[2], N = d[3], K = d[4];
  int64_t B = BA > BB ? BA : BB;
  if ((BA != B && BA != 1) || (BB != B && BB != 1)) {
    throw Napi::RangeError::New(info.Env(), "matMul: batch sizes do not broadcast");
  }
  CheckLen(info[0], BA * M * K, "a");
  CheckLen(info[1], BB * K * N, "b");
  CheckLen(info[2], B * M * N, "c");
  if (hasBias) CheckLen(info[6], N, "bias");
  std::string key = Key("mm", {BA, BB, M, N, K, ta, tb, hasBias, relu});
  auto& cache = Cache<MatMulEntry>();
  auto it = cache.find(key);
  if (it == cache.end()) {
    TrimCache<MatMulEntry>();
    auto e = std::make_unique<MatMulEntry>();
    e->a = ta ? memory::desc({BA, M, K}, dt::f32, memory::dims{M * K, 1, M})
              : memory::desc({BA, M, K}, dt::f32, memory::dims{M * K, K, 1});
    e->b = tb ? memory::desc({BB, K, N}, dt::f32, memory::dims{K * N, 1, K})
              : memory::desc({BB, K, N}, dt::f32, memory::dims{K * N, N, 1});
    e->c = memory::desc({B, M, N}, dt::f32, tag::abc);
    if (hasBias) e->bias = memory::desc({1, 1, N}, dt::f32, tag::abc);
    primitive_attr attr;
    if (relu) {
      post_ops po;
      po.append_eltwise(1.f, algorithm::eltwise_relu, 0.f, 0.f);
      attr.set_post_ops(po);
    }
    // bf16: the operands as dense bf16 (a row-major, b in the layout oneDNN prefers), the product and bias fp32
    auto pd = Bf16OrF32("matmul", [&](dt m) {
      auto a = m == dt::f32 ? e->a : memory::desc({BA, M, K}, m, tag::abc);
      auto b = m == dt::f32 ? e->b : memory::desc({BB, K, N}, m, tag::any);
      matmul::desc md = hasBias ? matmul::desc(a, b, e->bias, e->c) : matmul::desc(a, b, e->c);
      return matmul::primitive_desc(md, attr, Eng());
    });
    e->prim = matmul(pd);
    e->ma = MakeWeiSlot(pd.src_desc(), e->a, false);
    e->mb = MakeWeiSlot(pd.weights_desc(), e->b, false);
    ImplNames()["matmul"] = pd.impl_info_str();
    it = cache.emplace(key, std::move(e)).first;
  }
  MatMulEntry& e = *it->second;
  auto& s = Strm();
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, In(e.ma, e.a, e.a, a, s)},
                                       {DNNL_ARG_WEIGHTS, In(e.mb, e.b, e.b, b, s)},
                                       {DNNL_ARG_DST, memory(e.c, Eng(), c)}};
  if (hasBias) args.emplace(DNNL_ARG_BIAS, memory(e.bias, Eng(), bias));
  e.prim.execute(s, args);
  s.wait();
  return info.Env().Undefined();
}

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
        for (int64_t i = 0; i < g.kh; ++i) {
          int64_t h = oh * g.sh - g.pt + i;
          if (h < 0 || h >= g.H) continue;
          for (int64_t j = 0; j < g.kw; ++j) {
            int64_t w = ow * g.sw - g.pl + j;
            if (w < 0 || w >= g.W) continue;
            any = true;
            const float* in = x + ((n * g.H + h) * g.W + w) * g.C;
            for (int64_t c = 0; c < g.C; ++c) out[c] = in[c] > out[c] ? in[c] : out[c];
          }
        }
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
            for (int64_t i = 0; i < g.kh; ++i) {
              int64_t h = oh * g.sh - g.pt + i;
              if (h < 0 || h >= g.H) continue;
              for (int64_t j = 0; j < g.kw; ++j) {
                int64_t w = ow * g.sw - g.pl + j;
                if (w < 0 || w >= g.W) continue;
                int64_t base = ((n * g.H + h) * g.W + w) * g.C;
                for (int64_t c = c0; c < c1; ++c) {
                  float v = x[base + c];
                  if (v > best[c - c0] || arg[c - c0] < 0) {
                    best[c - c0] = v;
                    arg[c - c0] = base + c;
                  }
                }
              }
            }
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


// binary(op, a, b, out, mode, inner): op 0 add, 1 sub, 2 mul, 3 div.
// mode 0: same size; 1: b repeats every `inner` (b is [inner]); 2: a repeats; 3: b scalar; 4: a scalar.
Napi::Value Binary(const Napi::CallbackInfo& info) {
  int op = info[0].As<Napi::Number>().Int32Value();
  const float* a = F32(info[1], "a");
  const float* b = F32(info[2], "b");
  float* out = F32(info[3], "out");
  int mode = info[4].As<Napi::Number>().Int32Value();
  int64_t inner = info[5].As<Napi::Number>().Int64Value();
  const int64_t n = static_cast<int64_t>(Len(info[3]));
  const int64_t la = static_cast<int64_t>(Len(info[1])), lb = static_cast<int64_t>(Len(info[2]));
  if (inner <= 0) inner = 1;
  bool ok = (mode == 0 && la >= n && lb >= n) || (mode == 1 && la >= n && lb >= inner && n % inner == 0) ||
            (mode == 2 && lb >= n && la >= inner && n % inner == 0) || (mode == 3 && la >= n && lb >= 1) ||
            (mode == 4 && lb >= n && la >= 1);
  if (!ok || op < 0 || op > 3) throw Napi::RangeError::New(info.Env(), "binary: bad mode or lengths");
  auto ia = [&](int64_t i) { return mode == 2 ? i % inner : mode == 4 ? 0 : i; };
  auto ib = [&](int64_t i) { return mode == 1 ? i % inner : mode == 3 ? 0 : i; };
#define DPT_LOOP(EXPR)                                                            \
  if (mode == 0) {                                                                \
    _Pragma("omp parallel for simd schedule(static) if (n > 65536)")              \
    for (int64_t i = 0; i < n; ++i) { const float x = a[i], y = b[i]; out[i] = (EXPR); } \
  } else if (mode == 1 || mode == 2) {                                            \
    const int64_t rows = n / inner;                                               \
    _Pragma("omp parallel for schedule(static) if (n > 65536)")                   \
    for (int64_t r = 0; r < rows; ++r) {                                          \
      for (int64_t j = 0; j < inner; ++j) {                                       \
        const int64_t i = r * inner + j;                                          \
        const float x = a[ia(i)], y = b[ib(i)];                                   \
        out[i] = (EXPR);                                                          \
      }                                                                           \
    }                                                                             \
  } else {                                                                        \
    _Pragma("omp parallel for simd schedule(static) if (n > 65536)")              \
    for (int64_t i = 0; i < n; ++i) { const float x = a[ia(i)], y = b[ib(i)]; out[i] = (EXPR); } \
  }
  switch (op) {
    case 0: DPT_LOOP(x + y) break;
    case 1: DPT_LOOP(x - y) break;
    case 2: DPT_LOOP(x * y) break;
    default: DPT_LOOP(x / y) break;
  }
#undef DPT_LOOP
  return info.Env().Undefined();
}


// binaryStrided(op, a, b, out, outShape, aStrides, bStrides): general broadcast (stride 0 on broadcast dims).
Napi::Value BinaryStrided(const Napi::CallbackInfo& info) {
  int op = info[0].As<Napi::Number>().Int32Value();
  const float* a = F32(info[1], "a");
  const float* b = F32(info[2], "b");
  float* out = F32(info[3], "out");
  size_t rank = info[4].As<Napi::Array>().Length();
  if (rank == 0 || rank > 8 || op < 0 || op > 3) throw Napi::RangeError::New(info.Env(), "binaryStrided: bad rank or op");
  auto shape = Dims(info[4], rank, "outShape");
  auto sa = Dims(info[5], rank, "aStrides");
  auto sb = Dims(info[6], rank, "bStrides");
  int64_t maxA = 0, maxB = 0;
  for (size_t d = 0; d < rank; ++d) {
    maxA += (shape[d] - 1) * sa[d];
    maxB += (shape[d] - 1) * sb[d];
  }
  if (maxA >= static_cast<int64_t>(Len(info[1])) || maxB >= static_cast<int64_t>(Len(info[2])) ||
      Prod(shape) > static_cast<int64_t>(Len(info[3]))) {
    throw Napi::RangeError::New(info.Env(), "binaryStrided: operands too short");
  }
  const int64_t inner = shape[rank - 1], ia = sa[rank - 1], ib = sb[rank - 1];
  const int64_t rows = Prod(shape) / (inner > 0 ? inner : 1);
#pragma omp parallel for schedule(static) if (rows * inner > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t rem = r, offA = 0, offB = 0;
    for (int64_t d = static_cast<int64_t>(rank) - 2; d >= 0; --d) {
      const int64_t i = rem % shape[d];
      rem /= shape[d];
      offA += i * sa[d];
      offB += i * sb[d];
    }
    float* o = out + r * inner;
    const float* pa = a + offA;
    const float* pb = b + offB;
    switch (op) {
      case 0: for (int64_t j = 0; j < inner; ++j) o[j] = pa[j * ia] + pb[j * ib]; break;
      case 1: for (int64_t j = 0; j < inner; ++j) o[j] = pa[j * ia] - pb[j * ib]; break;
      case 2: for (int64_t j = 0; j < inner; ++j) o[j] = pa[j * ia] * pb[j * ib]; break;
      default: for (int64_t j = 0; j < inner; ++j) o[j] = pa[j * ia] / pb[j * ib]; break;
    }
  }
  return info.Env().Undefined();
}

// unary(op, x, out, alpha, beta): op 0 relu, 1 step (x > 0 ? 1 : alpha; NaN stays NaN, as tfjs),
// 2 clip to [alpha, beta] (NaN stays NaN, as tfjs).
Napi::Value Unary(const Napi::CallbackInfo& info) {
  int op = info[0].As<Napi::Number>().Int32Value();
  const float* x = F32(info[1], "x");
  float* out = F32(info[2], "out");
  float alpha = static_cast<float>(info[3].As<Napi::Number>().DoubleValue());
  const int64_t n = static_cast<int64_t>(Len(info[2]));
  if (static_cast<int64_t>(Len(info[1])) < n) throw Napi::RangeError::New(info.Env(), "unary: x too short");
  if (op == 0) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.f ? x[i] : (x[i] != x[i] ? x[i] : 0.f);
  } else if (op == 2) {
    const float hi = static_cast<float>(info[4].As<Napi::Number>().DoubleValue());
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] > hi ? hi : (x[i] < alpha ? alpha : x[i]);
  } else {
#pragma omp parallel for simd schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] != x[i] ? x[i] : (x[i] > 0.f ? 1.f : alpha);
  }
  return info.Env().Undefined();
}

// reduceSum(x, out, outer, red, inner, scale): out[o, i] = scale * sum_r x[o, r, i] (double accumulation).
Napi::Value ReduceSum(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0], "x");
  float* out = F32(info[1], "out");
  int64_t outer = info[2].As<Napi::Number>().Int64Value();
  int64_t red = info[3].As<Napi::Number>().Int64Value();
  int64_t inner = info[4].As<Napi::Number>().Int64Value();
  double scale = info[5].As<Napi::Number>().DoubleValue();
  CheckLen(info[0], outer * red * inner, "x");
  CheckLen(info[1], outer * inner, "out");
  if (inner == 1) {
#pragma omp parallel for schedule(static) if (outer * red > 65536)
    for (int64_t o = 0; o < outer; ++o) {
      double acc = 0;
      const float* p = x + o * red;
      for (int64_t r = 0; r < red; ++r) acc += p[r];
      out[o] = static_cast<float>(acc * scale);
    }
    return info.Env().Undefined();
  }
  // Split the reduced axis across threads when there are few output rows (bias gradients: outer == 1).
  const int nt = omp_get_max_threads();
  std::vector<double> partial(static_cast<size_t>(nt) * outer * inner, 0.0);
#pragma omp parallel if (outer * red * inner > 65536)
  {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    double* acc = partial.data() + static_cast<size_t>(t) * outer * inner;
    for (int64_t o = 0; o < outer; ++o) {
      const int64_t r0 = red * t / T, r1 = red * (t + 1) / T;
      double* ao = acc + o * inner;
      for (int64_t r = r0; r < r1; ++r) {
        const float* p = x + (o * red + r) * inner;
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) ao[i] += p[i];
      }
    }
  }
  for (int64_t k = 0; k < outer * inner; ++k) {
    double sum = 0;
    for (int t = 0; t < nt; ++t) sum += partial[static_cast<size_t>(t) * outer * inner + k];
    out[k] = static_cast<float>(sum * scale);
  }
  return info.Env().Undefined();
}

// Shapes of a rank-1..8 shape op whose args start (x, xShape, out, outShape, ...).
struct ShapeOpDims {
  size_t rank;
  std::vector<int64_t> xs, os;
};
ShapeOpDims ShapeOpArgs(const Napi::CallbackInfo& info, const char* op) {
  const size_t rank = info[1].As<Napi::Array>().Length();
  if (rank == 0 || rank > 8) throw Napi::RangeError::New(info.Env(), std::string(op) + ": rank must be 1..8");
  return {rank, Dims(info[1], rank, "xShape"), Dims(info[3], rank, "outShape")};
}

// Row-major strides of a shape.
std::vector<int64_t> RowMajorStrides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (int64_t d = static_cast<int64_t>(dims.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * dims[d + 1];
  return st;
}

// Where row r of `box` (its rows: every index but the last, row-major) starts in a tensor with `strides`:
// sum over d of coord(d, i_d) * strides[d], i_d being r's index along d.
template <class Coord>
int64_t RowOffset(int64_t r, const std::vector<int64_t>& box, const std::vector<int64_t>& strides, Coord coord) {
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(box.size()) - 2; d >= 0; --d) {
    const int64_t i = r % box[d];
    r /= box[d];
    off += coord(d, i) * strides[d];
  }
  return off;
}

// pad(x, xShape, out, outShape, before, value): constant padding of any rank (1..8); out is overwritten.
Napi::Value Pad(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0], "x");
  float* out = F32(info[2], "out");
  const ShapeOpDims dims = ShapeOpArgs(info, "pad");
  const size_t rank = dims.rank;
  const std::vector<int64_t>& xs = dims.xs;
  const std::vector<int64_t>& os = dims.os;
  auto before = Dims(info[4], rank, "before");
  const float value = static_cast<float>(info[5].As<Napi::Number>().DoubleValue());
  for (size_t d = 0; d < rank; ++d) {
    if (before[d] < 0 || before[d] + xs[d] > os[d]) throw Napi::RangeError::New(info.Env(), "pad: bad paddings");
  }
  CheckLen(info[0], Prod(xs), "x");
  CheckLen(info[2], Prod(os), "out");
  const int64_t total = Prod(os);
#pragma omp parallel for simd schedule(static) if (total > 65536)
  for (int64_t i = 0; i < total; ++i) out[i] = value;
  const int64_t inner = xs[rank - 1];
  const int64_t rows = inner > 0 ? Prod(xs) / inner : 0;
  const auto ostr = RowMajorStrides(os);
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = before[rank - 1] + RowOffset(r, xs, ostr, [&](int64_t d, int64_t i) { return i + before[d]; });
    std::memcpy(out + off, x + r * inner, sizeof(float) * inner);
  }
  return info.Env().Undefined();
}

// slice(x, xShape, out, outShape, begin): out = x[begin : begin + outShape] (rank 1..8).
Napi::Value Slice(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0], "x");
  float* out = F32(info[2], "out");
  const ShapeOpDims dims = ShapeOpArgs(info, "slice");
  const size_t rank = dims.rank;
  const std::vector<int64_t>& xs = dims.xs;
  const std::vector<int64_t>& os = dims.os;
  auto begin = Dims(info[4], rank, "begin");
  for (size_t d = 0; d < rank; ++d) {
    if (begin[d] < 0 || os[d] < 0 || begin[d] + os[d] > xs[d]) throw Napi::RangeError::New(info.Env(), "slice: out of range");
  }
  CheckLen(info[0], Prod(xs), "x");
  CheckLen(info[2], Prod(os), "out");
  const int64_t total = Prod(os);
  const int64_t inner = os[rank - 1];
  const int64_t rows = inner > 0 ? total / inner : 0;
  const auto xstr = RowMajorStrides(xs);
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = begin[rank - 1] + RowOffset(r, os, xstr, [&](int64_t d, int64_t i) { return i + begin[d]; });
    std::memcpy(out + r * inner, x + off, sizeof(float) * inner);
  }
  return info.Env().Undefined();
}

// tile(x, xShape, out, outShape): out[i0..] = x[i0 % xShape[0], ...] (rank 1..8; outShape[d] a multiple of xShape[d]).
Napi::Value Tile(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0], "x");
  float* out = F32(info[2], "out");
  const ShapeOpDims dims = ShapeOpArgs(info, "tile");
  const size_t rank = dims.rank;
  const std::vector<int64_t>& xs = dims.xs;
  const std::vector<int64_t>& os = dims.os;
  for (size_t d = 0; d < rank; ++d) {
    if (xs[d] <= 0 || os[d] < 0 || os[d] % xs[d] != 0) throw Napi::RangeError::New(info.Env(), "tile: bad shapes");
  }
  CheckLen(info[0], Prod(xs), "x");
  CheckLen(info[2], Prod(os), "out");
  const int64_t total = Prod(os);
  const int64_t inner = os[rank - 1], xin = xs[rank - 1];
  const int64_t rows = inner > 0 ? total / inner : 0;
  const auto xstr = RowMajorStrides(xs);
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    float* o = out + r * inner;
    const float* p = x + RowOffset(r, os, xstr, [&](int64_t d, int64_t i) { return i % xs[d]; });
    for (int64_t j0 = 0; j0 < inner; j0 += xin) std::memcpy(o + j0, p, sizeof(float) * xin);
  }
  return info.Env().Undefined();
}

// batchNorm(x, mean, scale, offset, out, C): out[i] = (x[i] - mean[c]) * scale[c] + offset[c], c = i % C
// (scale already holds gamma / sqrt(var + eps)).
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

Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  const float* x = F32(info[0], "x");
  const float* mean = F32(info[1], "mean");
  const float* scale = F32(info[2], "scale");
  const float* offset = F32(info[3], "offset");
  float* out = F32(info[4], "out");
  const int64_t C = info[5].As<Napi::Number>().Int64Value();
  const int64_t n = static_cast<int64_t>(Len(info[4]));
  if (C <= 0 || n % C != 0) throw Napi::RangeError::New(info.Env(), "batchNorm: size is not a multiple of C");
  CheckLen(info[0], n, "x");
  CheckLen(info[1], C, "mean");
  CheckLen(info[2], C, "scale");
  CheckLen(info[3], C, "offset");
  const int64_t rows = n / C;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const float* px = x + r * C;
    float* po = out + r * C;
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) po[c] = (px[c] - mean[c]) * scale[c] + offset[c];
  }
  return info.Env().Undefined();
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n > 0) omp_set_num_threads(n);
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}
// The convolution primitives depend on the layout and algorithm settings: rebuilt on next use after a change.
void ClearConvCaches() {
  Cache<FwdEntry>().clear();
  Cache<BwdDataEntry>().clear();
  Cache<BwdWeiEntry>().clear();
}
Napi::Value SetActivationLayout(const Napi::CallbackInfo& info) {
  bool any = info[0].As<Napi::String>().Utf8Value() == "any";
  if (any != g_anyAct) {
    g_anyAct = any;
    ClearConvCaches();
  }
  return Napi::String::New(info.Env(), g_anyAct ? "any" : "nhwc");
}
Napi::Value SetConvAlgorithm(const Napi::CallbackInfo& info) {
  auto want = info[0].As<Napi::String>().Utf8Value();
  if (want != "winograd" && want != "direct") {
    throw Napi::RangeError::New(info.Env(), "setConvAlgorithm: '" + want + "' is not 'winograd' or 'direct'");
  }
  bool wino = want == "winograd";
  if (wino != g_winograd) {
    g_winograd = wino;
    ClearConvCaches();
  }
  return Napi::String::New(info.Env(), g_winograd ? "winograd" : "direct");
}
Napi::Value SetPrecision(const Napi::CallbackInfo& info) {
  auto want = info[0].As<Napi::String>().Utf8Value();
  if (want != "fp32" && want != "bf16") {
    throw Napi::RangeError::New(info.Env(), "setPrecision: '" + want + "' is not 'fp32' or 'bf16'");
  }
  bool bf16 = want == "bf16";
  if (bf16 && Bf16Isa().empty()) {
    throw Napi::Error::New(info.Env(), "setPrecision: this CPU has neither AVX512-BF16 nor AMX (oneDNN ISA " +
                                           std::to_string(static_cast<int>(get_effective_cpu_isa())) + ")");
  }
  if (bf16 != g_bf16) {
    g_bf16 = bf16;
    ClearConvCaches();
    Cache<MatMulEntry>().clear();
    Bf16Fallbacks().clear();
  }
  return Napi::String::New(info.Env(), g_bf16 ? "bf16" : "fp32");
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
  auto impl = Napi::Object::New(env);
  for (auto& kv : ImplNames()) impl.Set(kv.first, kv.second);
  o.Set("impl", impl);
  return o;
}
Napi::Value ClearCache(const Napi::CallbackInfo& info) {
  ClearConvCaches();
  Cache<MatMulEntry>().clear();
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
  exports.Set("adamUpdate", Napi::Function::New(env, Guard<AdamUpdate>));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("setActivationLayout", Napi::Function::New(env, SetActivationLayout));
  exports.Set("setConvAlgorithm", Napi::Function::New(env, SetConvAlgorithm));
  exports.Set("setPrecision", Napi::Function::New(env, Guard<SetPrecision>));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("info", Napi::Function::New(env, Guard<Info>));
  exports.Set("clearCache", Napi::Function::New(env, ClearCache));
  return exports;
}

}  // namespace

NODE_API_MODULE(dptrain_native, Init)
