// Matrix multiplication (TS side: src/kernels/matmul.ts): oneDNN batched matmul with broadcasting, transposes, bias
// and relu, bf16 where asked and implemented.
#include "common.h"

namespace dptrain_native {

struct MatMulEntry {
  memory::desc a, b, c, bias;  // a, b: the user's (strided fp32) operands
  matmul prim;
  WeiSlot ma, mb;  // bf16: the operands reordered into the primitive's bf16 layouts
};

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
  MatMulEntry& e = CachedEntry<MatMulEntry>(key, [&] {
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
    return e;
  });
  auto& s = Strm();
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, In(e.ma, e.a, e.a, a, s)},
                                       {DNNL_ARG_WEIGHTS, In(e.mb, e.b, e.b, b, s)},
                                       {DNNL_ARG_DST, memory(e.c, Eng(), c)}};
  if (hasBias) args.emplace(DNNL_ARG_BIAS, memory(e.bias, Eng(), bias));
  e.prim.execute(s, args);
  s.wait();
  return info.Env().Undefined();
}

void ClearMatMulCache() { Cache<MatMulEntry>().clear(); }

}  // namespace dptrain_native
