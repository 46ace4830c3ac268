// Elementwise kernels (TS side: src/kernels/elementwise.ts): binary ops with broadcasting, unary ops, sums.
#include "common.h"

namespace dptrain_native {

// The operands every binary kernel starts with: (op, a, b, out, ...), op 0 add, 1 sub, 2 mul, 3 div.
struct BinaryOperands {
  int op;
  const float* a;
  const float* b;
  float* out;
};
BinaryOperands BinaryArgs(const Napi::CallbackInfo& info) {
  return {info[0].As<Napi::Number>().Int32Value(), F32(info[1], "a"), F32(info[2], "b"), F32(info[3], "out")};
}

// binary(op, a, b, out, mode, inner): op 0 add, 1 sub, 2 mul, 3 div.
// mode 0: same size; 1: b repeats every `inner` (b is [inner]); 2: a repeats; 3: b scalar; 4: a scalar.
Napi::Value Binary(const Napi::CallbackInfo& info) {
  const BinaryOperands operands = BinaryArgs(info);
  const float *a = operands.a, *b = operands.b;
  int mode = info[4].As<Napi::Number>().Int32Value();
  int64_t inner = info[5].As<Napi::Number>().Int64Value();
  const int64_t n = static_cast<int64_t>(Len(info[3]));
  const int64_t la = static_cast<int64_t>(Len(info[1])), lb = static_cast<int64_t>(Len(info[2]));
  if (inner <= 0) inner = 1;
  bool ok = (mode == 0 && la >= n && lb >= n) || (mode == 1 && la >= n && lb >= inner && n % inner == 0) ||
            (mode == 2 && lb >= n && la >= inner && n % inner == 0) || (mode == 3 && la >= n && lb >= 1) ||
            (mode == 4 && lb >= n && la >= 1);
  if (!ok || operands.op < 0 || operands.op > 3) throw Napi::RangeError::New(info.Env(), "binary: bad mode or lengths");
  auto ia = [&](int64_t i) { return mode == 4 ? 0 : i; };
  auto ib = [&](int64_t i) { return mode == 3 ? 0 : i; };
#define DPT_LOOP(EXPR)                                                            \
  if (mode == 0) {                                                                \
    _Pragma("omp parallel for simd schedule(static) if (n > 65536)")              \
    for (int64_t i = 0; i < n; ++i) { const float x = a[i], y = b[i]; out[i] = (EXPR); } \
  } else if (mode == 1 || mode == 2) {                                            \
    /* row by row, the repeated operand indexed by column: no modulo, vectorised (a bias add) */ \
    const int64_t rows = n / inner;                                               \
    _Pragma("omp parallel for schedule(static) if (n > 65536)")                   \
    for (int64_t r = 0; r < rows; ++r) {                                          \
      const float* ra = mode == 2 ? a : a + r * inner;                 \
      const float* rb = mode == 1 ? b : b + r * inner;                 \
      float* ro = out + r * inner;                                     \
      _Pragma("omp simd")                                                         \
      for (int64_t j = 0; j < inner; ++j) { const float x = ra[j], y = rb[j]; ro[j] = (EXPR); } \
    }                                                                             \
  } else {                                                                        \
    _Pragma("omp parallel for simd schedule(static) if (n > 65536)")              \
    for (int64_t i = 0; i < n; ++i) { const float x = a[ia(i)], y = b[ib(i)]; out[i] = (EXPR); } \
  }
  float* out = operands.out;
  switch (operands.op) {
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
  const BinaryOperands operands = BinaryArgs(info);
  const float *a = operands.a, *b = operands.b;
  size_t rank = info[4].As<Napi::Array>().Length();
  if (rank == 0 || rank > 8 || operands.op < 0 || operands.op > 3) throw Napi::RangeError::New(info.Env(), "binaryStrided: bad rank or op");
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
    float* o = operands.out + r * inner;
    const float* pa = a + offA;
    const float* pb = b + offB;
    switch (operands.op) {
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
  const int64_t width = outer * inner;
  std::vector<double> sums(static_cast<size_t>(width));
  SumRowsInThreadOrder(
      red, width, outer * red * inner > 65536,
      [&](int64_t r, double* acc) {
        for (int64_t o = 0; o < outer; ++o) {
          const float* p = x + (o * red + r) * inner;
          double* ao = acc + o * inner;
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) ao[i] += p[i];
        }
      },
      sums.data());
  for (int64_t k = 0; k < width; ++k) out[k] = static_cast<float>(sums[static_cast<size_t>(k)] * scale);
  return info.Env().Undefined();
}

}  // namespace dptrain_native
