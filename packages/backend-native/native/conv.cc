// Convolution kernels (TS side: src/kernels/conv.ts): oneDNN forward, input gradient and filter gradient of 2-D and
// depthwise convolutions, Winograd where it is faster, bf16 where asked and implemented.
#include "common.h"

namespace dptrain_native {

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

// 3x3 stride-1 convolutions run as Winograd F(4x4, 3x3) where oneDNN implements it for the shape (not depthwise;
// channel counts it supports): fewer multiplications, 1.3x (VGG16 block5, 9x9) to 2.6x (block1, 150x150) faster than
// direct here, forward and both gradients. Its bits do not depend on the thread count (checked by the tests), and it
// needs oneDNN's blocked activation layout (reordered from/to NHWC around the call). Set with setConvAlgorithm().
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

// bf16 mode: filter gradients of Winograd-shaped convolutions with at least this many output pixels (H x W) run fp32
// Winograd (faster there, see Conv2DBackpropFilter).
constexpr int64_t kBf16WinogradMinOutput = 24 * 24;

// The kernel name to try bf16 for (Bf16OrF32), or "" where the bf16 policy keeps this convolution fp32 because fp32
// is faster for it (recorded in Bf16Fp32ByChoice). Measured with bench/conv-precision.ts (MobileNetV2, batch 8, one
// thread, forward + both gradients): every depthwise layer was 1.27-1.59x slower in bf16 (memory-bound: the reorders
// to and from bf16 cost more than the multiplies save), every regular one faster (0.53-0.87x) except the 1x1
// 32 -> 16 at 112x112 (1.11x), the one with under 24 FLOPs per activation value.
std::string Bf16Kernel(const ConvGeom& g, const char* kernel) {
  if (!g_bf16) return kernel;
  if (g.depthwise) {
    if (g_bf16Depthwise) return kernel;
    Bf16Fp32ByChoice().insert(std::string(kernel) + ": depthwise");
    return "";
  }
  const double cin = static_cast<double>(g.src[1]), cout = static_cast<double>(g.dst[1]);
  const double intensity = 2 * static_cast<double>(g.wei[2] * g.wei[3]) * cin * cout / (cin + cout);
  if (intensity < g_bf16MinIntensity) {
    Bf16Fp32ByChoice().insert(std::string(kernel) + ": intensity < " + std::to_string(static_cast<int>(g_bf16MinIntensity)));
    return "";
  }
  return kernel;
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

// The filter's identity passed as argument `i` (a positive number per tfjs tensor; 0 or absent: unknown).
double FilterId(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : 0;
}

// conv2d(x, xShape, w, wShape, bias|null, y, yShape, conv[8|9], act: bool (relu) | 0 linear, 1 relu, 2 relu6,
//        filterId?)
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
  FwdEntry& e = CachedEntry<FwdEntry>(key, [&] {
    auto pd = Bf16OrF32(Bf16Kernel(g, g.depthwise ? "dw_fwd" : "conv_fwd"), [&](dt m) { return FwdPd(g, hasBias, act, m); });
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
    return e;
  });
  auto& s = Strm();
  memory mx = In(e.x, Nhwc(g.src), e.src, x, s), my = Out(e.y, e.dst, y);
  memory mw = FilterIn(g.key, FilterId(info, 9), e.w, g.userWei, e.wei, w, s);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, mx}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, my}};
  if (hasBias) args.emplace(DNNL_ARG_BIAS, memory(e.bias, Eng(), b));
  e.prim.execute(s, args);
  Out2User(e.y, Nhwc(g.dst), y, s);
  s.wait();
  return info.Env().Undefined();
}

// conv2dBackpropInput(dy, dyShape, w, wShape, dx, dxShape, conv[8], filterId?)
Napi::Value Conv2DBackpropInput(const Napi::CallbackInfo& info) {
  float* dy = F32(info[0], "dy");
  float* w = F32(info[2], "filter");
  float* dx = F32(info[4], "dx");
  ConvGeom g = Geom(info, 5, 3, 1, 6);
  CheckLen(info[0], Prod(g.dst), "dy");
  CheckLen(info[2], Prod(g.wei), "filter");
  CheckLen(info[4], Prod(g.src), "dx");
  BwdDataEntry& e = CachedEntry<BwdDataEntry>(g.key, [&] {
    // Backward data measures faster on oneDNN's blocked layout than on NHWC (block5: 20 vs 26 ms), so it always asks for it.
    auto pd = Bf16OrF32(Bf16Kernel(g, g.depthwise ? "dw_bwd_data" : "conv_bwd_data"), [&](dt m) {
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
    return e;
  });
  auto& s = Strm();
  memory mdy = In(e.dy, Nhwc(g.dst), e.diffDst, dy, s), mdx = Out(e.dx, e.diffSrc, dx);
  memory mw = FilterIn(g.key, FilterId(info, 7), e.w, g.userWei, e.wei, w, s);
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
  if (winoFaster) Bf16Fp32ByChoice().insert("conv_bwd_weights: winograd");
  const std::string kernel = winoFaster ? "" : Bf16Kernel(g, g.depthwise ? "dw_bwd_weights" : "conv_bwd_weights");
  std::optional<OmpThreadsScope> oneThread;
  if (g.depthwise || (g_bf16 && !kernel.empty())) oneThread.emplace(1);
  BwdWeiEntry& e = CachedEntry<BwdWeiEntry>(g.key, [&] {
    auto pd = Bf16OrF32(kernel, [&](dt m) {
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
    return e;
  });
  auto& s = Strm();
  memory mx = In(e.x, Nhwc(g.src), e.src, x, s), mdy = In(e.dy, Nhwc(g.dst), e.diffDst, dy, s);
  memory mdw = Out(e.w, e.diffWei, dw);
  e.prim.execute(s, {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_DIFF_WEIGHTS, mdw}});
  s.wait();
  if (e.w.needed && !F32FilterRows(dw, g.userWei, e.diffWei, e.w.mem, true)) {
    Out2User(e.w, g.userWei, dw, s);
    s.wait();
  }
  return info.Env().Undefined();
}

void ClearConvCaches() {
  Cache<FwdEntry>().clear();
  Cache<BwdDataEntry>().clear();
  Cache<BwdWeiEntry>().clear();
  ClearFilterCopies();
}

}  // namespace dptrain_native
