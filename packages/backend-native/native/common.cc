// Shared setup of the native kernels: engine, stream, argument checks, memory helpers, precision and layout settings.
#include "common.h"

namespace dptrain_native {

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

memory::desc Nhwc(const memory::dims& d) { return memory::desc(d, dt::f32, tag::nhwc); }

memory::desc Any(const memory::dims& d) { return memory::desc(d, dt::f32, tag::any); }

// Activation layout asked of oneDNN: NHWC as tfjs stores it (no reorders), or 'any' (oneDNN's blocked layout,
// reordered from/to NHWC around each call). Set with setActivationLayout().
bool g_anyAct = false;

memory::desc Act(const memory::dims& d) { return g_anyAct ? Any(d) : Nhwc(d); }

// 3x3 stride-1 convolutions run as Winograd F(4x4, 3x3) where oneDNN implements it for the shape (see conv.cc).
// Set with setConvAlgorithm().
bool g_winograd = true;

// Precision of the convolutions and matmuls (setPrecision): fp32, or bf16 (see common.h).
bool g_bf16 = false;

bool g_bf16Depthwise = false;
double g_bf16MinIntensity = 24;

std::set<std::string>& Bf16Fp32ByChoice() {
  static std::set<std::string> s;
  return s;
}

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

std::unordered_map<std::string, std::string>& ImplNames() {
  static std::unordered_map<std::string, std::string> m;
  return m;
}

}  // namespace dptrain_native
