// Normalisation and shape kernels (TS side: src/kernels/norm-pad.ts): inference batch norm, pad, slice, tile.
#include "common.h"

namespace dptrain_native {

// batchNorm(x, mean, scale, offset, out, C): out[i] = (x[i] - mean[c]) * scale[c] + offset[c], c = i % C
// (scale already holds gamma / sqrt(var + eps)).
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

// The arguments every rank-1..8 shape op starts with: (x, xShape, out, outShape, ...).
struct ShapeOp {
  const float* x;
  float* out;
  size_t rank;
  std::vector<int64_t> xs, os;
  // RangeError when x or out holds fewer values than its shape (checked after the op's own shape checks).
  void CheckLengths(const Napi::CallbackInfo& info) const {
    CheckLen(info[0], Prod(xs), "x");
    CheckLen(info[2], Prod(os), "out");
  }
};
ShapeOp ShapeOpArgs(const Napi::CallbackInfo& info, const char* op) {
  const float* x = F32(info[0], "x");
  float* out = F32(info[2], "out");
  const size_t rank = info[1].As<Napi::Array>().Length();
  if (rank == 0 || rank > 8) throw Napi::RangeError::New(info.Env(), std::string(op) + ": rank must be 1..8");
  return {x, out, rank, Dims(info[1], rank, "xShape"), Dims(info[3], rank, "outShape")};
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
  const ShapeOp a = ShapeOpArgs(info, "pad");
  const size_t rank = a.rank;
  const auto &xs = a.xs, &os = a.os;
  auto before = Dims(info[4], rank, "before");
  const float value = static_cast<float>(info[5].As<Napi::Number>().DoubleValue());
  for (size_t d = 0; d < rank; ++d) {
    if (before[d] < 0 || before[d] + xs[d] > os[d]) throw Napi::RangeError::New(info.Env(), "pad: bad paddings");
  }
  a.CheckLengths(info);
  const int64_t total = Prod(os);
#pragma omp parallel for simd schedule(static) if (total > 65536)
  for (int64_t i = 0; i < total; ++i) a.out[i] = value;
  const int64_t inner = xs[rank - 1];
  const int64_t rows = inner > 0 ? Prod(xs) / inner : 0;
  const auto ostr = RowMajorStrides(os);
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = before[rank - 1] + RowOffset(r, xs, ostr, [&](int64_t d, int64_t i) { return i + before[d]; });
    std::memcpy(a.out + off, a.x + r * inner, sizeof(float) * inner);
  }
  return info.Env().Undefined();
}

// slice(x, xShape, out, outShape, begin): out = x[begin : begin + outShape] (rank 1..8).
Napi::Value Slice(const Napi::CallbackInfo& info) {
  const ShapeOp a = ShapeOpArgs(info, "slice");
  const size_t rank = a.rank;
  const auto &xs = a.xs, &os = a.os;
  auto begin = Dims(info[4], rank, "begin");
  for (size_t d = 0; d < rank; ++d) {
    if (begin[d] < 0 || os[d] < 0 || begin[d] + os[d] > xs[d]) throw Napi::RangeError::New(info.Env(), "slice: out of range");
  }
  a.CheckLengths(info);
  const int64_t total = Prod(os);
  const int64_t inner = os[rank - 1];
  const int64_t rows = inner > 0 ? total / inner : 0;
  const auto xstr = RowMajorStrides(xs);
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off = begin[rank - 1] + RowOffset(r, os, xstr, [&](int64_t d, int64_t i) { return i + begin[d]; });
    std::memcpy(a.out + r * inner, a.x + off, sizeof(float) * inner);
  }
  return info.Env().Undefined();
}

// tile(x, xShape, out, outShape): out[i0..] = x[i0 % xShape[0], ...] (rank 1..8; outShape[d] a multiple of xShape[d]).
Napi::Value Tile(const Napi::CallbackInfo& info) {
  const ShapeOp a = ShapeOpArgs(info, "tile");
  const size_t rank = a.rank;
  const auto &xs = a.xs, &os = a.os;
  for (size_t d = 0; d < rank; ++d) {
    if (xs[d] <= 0 || os[d] < 0 || os[d] % xs[d] != 0) throw Napi::RangeError::New(info.Env(), "tile: bad shapes");
  }
  a.CheckLengths(info);
  const int64_t total = Prod(os);
  const int64_t inner = os[rank - 1], xin = xs[rank - 1];
  const int64_t rows = inner > 0 ? total / inner : 0;
  const auto xstr = RowMajorStrides(xs);
#pragma omp parallel for schedule(static) if (total > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    float* o = a.out + r * inner;
    const float* p = a.x + RowOffset(r, os, xstr, [&](int64_t d, int64_t i) { return i % xs[d]; });
    for (int64_t j0 = 0; j0 < inner; j0 += xin) std::memcpy(o + j0, p, sizeof(float) * xin);
  }
  return info.Env().Undefined();
}

}  // namespace dptrain_native
