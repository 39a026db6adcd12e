// edge_tensor: a camera frame -> a model's input tensor, written straight into the caller's memory
// (the inference worker's SharedArrayBuffer slot). No GStreamer, no policy, no logging: the TS side
// (src/inference/tensorize.ts) builds the sampling plan and checks every size before calling.
//
//   tensor(src: Uint8Array, dst: Float32Array | Uint16Array | Uint8Array, ints: Int32Array, floats: Float32Array): void
//
// The plan, in two typed arrays (built once per frame size by the TS side, src/inference/sampling.ts):
//   ints   = [W, H, layout (0 NCHW, 1 NHWC), dtype (0 float32, 1 float16, 2 uint8), bpp, k0, k1, k2,
//             xlo, xhi, ylo, yhi, unitX, C (model channels: 3, or 1 grey), kind (0 lerp, 1 taps),
//             x section, y section]
//   floats = [mul0, mul1, mul2, add0, add1, add2, pad0, pad1, pad2, grey0, grey1, grey2, x weights, y weights]
// lerp axis (bilinear, nearest): ints i0[n], i1[n] and floats w1[n]: byte offsets of the two source
// columns (x: column * bpp) or rows (y: row * stride) to blend, w1 the weight of the second.
// taps axis (area, antialiased filters): ints start[n + 1], off[start[n]] and floats weight[start[n]]:
// output pixel d sums the taps start[d] .. start[d + 1] - 1, each a byte offset and a weight.
// k is the source byte of each model channel; out = v * mul + add (uint8: mul 1, add 0.5, truncated:
// rounding); a grey model (C 1) takes v = s0 * grey0 + s1 * grey1 + s2 * grey2 of the three samples.
// Destination pixels outside [xlo, xhi) x [ylo, yhi) get pad (letterbox).
//
// The arithmetic is the reference's (src/inference/preprocess.ts) operation for operation, in double
// precision, rounded once to the output type, so both give the same bits (see
// test/unit/tensorize.test.ts). Built with -ffp-contract=off: no fused multiply-add.

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <vector>

namespace {

enum Layout { kNchw = 0, kNhwc = 1 };
enum Dtype { kF32 = 0, kF16 = 1, kU8 = 2 };

// IEEE binary32 -> binary16, round to nearest even (the same function as f16bits() in preprocess.ts).
uint16_t HalfOf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t exp = (x >> 23) & 0xffu;
  uint32_t mant = x & 0x7fffffu;
  if (exp == 0xffu) return static_cast<uint16_t>(sign | 0x7c00u | (mant != 0 ? 0x200u : 0u));  // Inf, NaN
  const int e = static_cast<int>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> Inf
  if (e <= 0) {                                                // subnormal half (or zero)
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) h++;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;  // may carry into the exponent: still right
  return static_cast<uint16_t>(sign | h);
}

template <Dtype D>
struct Out;
template <>
struct Out<kF32> {
  using T = float;
  static T Of(double v) { return static_cast<float>(v); }
};
template <>
struct Out<kF16> {
  using T = uint16_t;
  static T Of(double v) { return HalfOf(static_cast<float>(v)); }
};
template <>
struct Out<kU8> {
  using T = uint8_t;
  static T Of(double v) { return static_cast<uint8_t>(static_cast<int>(v)); }  // v in [0.5, 255.5]: truncation rounds
};

struct Axis {
  int kind;  // 0 lerp, 1 taps
  const int32_t *i0, *i1;  // lerp
  const float* w1;
  const int32_t *start, *off;  // taps
  const float* weight;
};

struct Plan {
  int W, H, layout, bpp, k[3], xlo, xhi, ylo, yhi, unitX, C;
  const int32_t *i0x, *i1x, *i0y, *i1y;
  double mul[3], add[3], pad[3], grey[3];
  const float *w1x, *w1y;
  Axis ax, ay;
};

// One channel (source byte k) at output pixel (x, y): src/inference/preprocess.ts sample(), operation for operation.
double Sample(const uint8_t* src, const Axis& ax, const Axis& ay, int x, int y, int k) {
  if (ax.kind == 0 && ay.kind == 0) {
    const uint8_t* r0 = src + ay.i0[y];
    const uint8_t* r1 = src + ay.i1[y];
    const int c0 = ax.i0[x] + k;
    const int c1 = ax.i1[x] + k;
    const double wx = ax.w1[x];
    const double top = r0[c0] + (static_cast<double>(r0[c1]) - r0[c0]) * wx;
    const double bot = r1[c0] + (static_cast<double>(r1[c1]) - r1[c0]) * wx;
    return top + (bot - top) * static_cast<double>(ay.w1[y]);
  }
  // Both axes have taps (the TS side never mixes the kinds).
  double acc = 0;
  for (int j = ay.start[y]; j < ay.start[y + 1]; j++) {
    const uint8_t* row = src + ay.off[j] + k;
    double r = 0;
    for (int i = ax.start[x]; i < ax.start[x + 1]; i++) r += row[ax.off[i]] * static_cast<double>(ax.weight[i]);
    acc += r * static_cast<double>(ay.weight[j]);
  }
  return acc;
}

// Any interpolation, colour or grey (Preprocessor.general in preprocess.ts).
template <Dtype D>
void RunGeneral(const uint8_t* src, typename Out<D>::T* out, const Plan& p) {
  using O = Out<D>;
  const size_t plane = static_cast<size_t>(p.W) * p.H;
  const bool nchw = p.layout == kNchw;
  const size_t cs = nchw ? plane : 1;
  const size_t ps = nchw ? 1 : p.C;
  // Taps: each source row the y taps name is filtered along x once (per model channel), then every
  // output row sums its rows: the sums Sample() would make, in the same order (preprocess.ts general()).
  const bool taps = p.ax.kind == 1 && p.ay.kind == 1;
  std::unordered_map<int32_t, size_t> rowAt;
  std::vector<double> rows;
  auto rowOf = [&](int32_t off) {
    if (rowAt.count(off)) return;
    const size_t at = rows.size();
    rows.resize(at + static_cast<size_t>(p.W) * 3, 0.0);
    double* r = rows.data() + at;
    for (int x = p.xlo; x < p.xhi; x++) {
      for (int c = 0; c < 3; c++) {
        double v = 0;
        for (int i = p.ax.start[x]; i < p.ax.start[x + 1]; i++) v += src[off + p.ax.off[i] + p.k[c]] * static_cast<double>(p.ax.weight[i]);
        r[x * 3 + c] = v;
      }
    }
    rowAt.emplace(off, at);
  };
  std::vector<const double*> rowsOfY;
  for (int y = 0; y < p.H; y++) {
    size_t o = static_cast<size_t>(y) * p.W * ps;
    if (taps && y >= p.ylo && y < p.yhi) {
      // Filter the rows first (rows may grow), then take their addresses.
      const int j0 = p.ay.start[y];
      const int j1 = p.ay.start[y + 1];
      for (int j = j0; j < j1; j++) rowOf(p.ay.off[j]);
      rowsOfY.clear();
      for (int j = j0; j < j1; j++) rowsOfY.push_back(rows.data() + rowAt[p.ay.off[j]]);
    }
    for (int x = 0; x < p.W; x++, o += ps) {
      if (y < p.ylo || y >= p.yhi || x < p.xlo || x >= p.xhi) {
        for (int c = 0; c < p.C; c++) out[o + c * cs] = O::Of(p.pad[c] * p.mul[c] + p.add[c]);
        continue;
      }
      double s[3];
      if (taps) {
        const float* wy = p.ay.weight + p.ay.start[y];
        for (int c = 0; c < 3; c++) {
          double acc = 0;
          for (size_t j = 0; j < rowsOfY.size(); j++) acc += rowsOfY[j][x * 3 + c] * static_cast<double>(wy[j]);
          s[c] = acc;
        }
      } else {
        for (int c = 0; c < 3; c++) s[c] = Sample(src, p.ax, p.ay, x, y, p.k[c]);
      }
      if (p.C == 1) {
        out[o] = O::Of((s[0] * p.grey[0] + s[1] * p.grey[1] + s[2] * p.grey[2]) * p.mul[0] + p.add[0]);
      } else {
        for (int c = 0; c < 3; c++) out[o + c * cs] = O::Of(s[c] * p.mul[c] + p.add[c]);
      }
    }
  }
}

template <Dtype D>
void Run(const uint8_t* src, typename Out<D>::T* out, const Plan& p) {
  using O = Out<D>;
  const size_t plane = static_cast<size_t>(p.W) * p.H;
  const bool nchw = p.layout == kNchw;
  const size_t cs = nchw ? plane : 1;  // channel step
  const size_t ps = nchw ? 1 : 3;      // pixel step
  typename O::T padv[3], lut[3][256];
  for (int c = 0; c < 3; c++) {
    padv[c] = O::Of(p.pad[c]);
    for (int v = 0; v < 256; v++) lut[c][v] = O::Of(v * p.mul[c] + p.add[c]);
  }
  auto padPixel = [&](size_t o) {
    out[o] = padv[0];
    out[o + cs] = padv[1];
    out[o + 2 * cs] = padv[2];
  };
  for (int y = 0; y < p.H; y++) {
    size_t o = static_cast<size_t>(y) * p.W * ps;
    if (y < p.ylo || y >= p.yhi) {
      for (int x = 0; x < p.W; x++, o += ps) padPixel(o);
      continue;
    }
    for (int x = 0; x < p.xlo; x++, o += ps) padPixel(o);
    const uint8_t* r0 = src + p.i0y[y];
    const uint8_t* r1 = src + p.i1y[y];
    const double wy = p.w1y[y];
    if (wy == 0 && p.unitX) {  // whole source pixels one after another: a table look-up per byte
      const uint8_t* t = r0 + p.i0x[p.xlo];
      for (int x = p.xlo; x < p.xhi; x++, o += ps, t += p.bpp) {
        out[o] = lut[0][t[p.k[0]]];
        out[o + cs] = lut[1][t[p.k[1]]];
        out[o + 2 * cs] = lut[2][t[p.k[2]]];
      }
    } else {
      for (int x = p.xlo; x < p.xhi; x++, o += ps) {
        const uint8_t* t0 = r0 + p.i0x[x];
        const uint8_t* t1 = r0 + p.i1x[x];
        const uint8_t* b0 = r1 + p.i0x[x];
        const uint8_t* b1 = r1 + p.i1x[x];
        const double wx = p.w1x[x];
        for (int c = 0; c < 3; c++) {
          const int k = p.k[c];
          const double top = t0[k] + (static_cast<double>(t1[k]) - t0[k]) * wx;
          const double bot = b0[k] + (static_cast<double>(b1[k]) - b0[k]) * wx;
          out[o + c * cs] = O::Of((top + (bot - top) * wy) * p.mul[c] + p.add[c]);
        }
      }
    }
    for (int x = p.xhi; x < p.W; x++, o += ps) padPixel(o);
  }
}

// The bytes a typed array views (its offset applied). napi_get_typedarray_info, not
// TypedArray::ArrayBuffer(): the destination lives in a SharedArrayBuffer, which is no ArrayBuffer.
void* DataOf(napi_env env, napi_value v) {
  void* data = nullptr;
  if (napi_get_typedarray_info(env, v, nullptr, nullptr, &data, nullptr, nullptr) != napi_ok) {
    throw Napi::Error::New(env, "expected a typed array");
  }
  return data;
}

Napi::Value Tensor(const Napi::CallbackInfo& info) {
  // The TS wrapper checked the types, the plan's layout and that src and dst are large enough.
  napi_env env = info.Env();
  const auto* srcData = static_cast<const uint8_t*>(DataOf(env, info[0]));
  auto* base = static_cast<uint8_t*>(DataOf(env, info[1]));
  const auto* n = static_cast<const int32_t*>(DataOf(env, info[2]));
  const auto* f = static_cast<const float*>(DataOf(env, info[3]));
  Plan p;
  p.W = n[0];
  p.H = n[1];
  p.layout = n[2];
  const int dtype = n[3];
  p.bpp = n[4];
  for (int c = 0; c < 3; c++) p.k[c] = n[5 + c];
  p.xlo = n[8];
  p.xhi = n[9];
  p.ylo = n[10];
  p.yhi = n[11];
  p.unitX = n[12];
  p.C = n[13];
  const int kind = n[14];
  for (int c = 0; c < 3; c++) {
    p.mul[c] = f[c];
    p.add[c] = f[3 + c];
    p.pad[c] = f[6 + c];
    p.grey[c] = f[9 + c];
  }
  // The two axis sections, x then y, each ints then floats.
  const int32_t* ni = n + 15;
  const float* nf = f + 12;
  auto axisAt = [&](int size) {
    Axis a{};
    a.kind = kind;
    if (kind == 0) {
      a.i0 = ni;
      a.i1 = ni + size;
      a.w1 = nf;
      ni += 2 * size;
      nf += size;
    } else {
      a.start = ni;
      a.off = ni + size + 1;
      a.weight = nf;
      const int taps = a.start[size];
      ni += size + 1 + taps;
      nf += taps;
    }
    return a;
  };
  p.ax = axisAt(p.W);
  p.ay = axisAt(p.H);
  if (kind == 0 && p.C == 3) {  // bilinear or nearest, colour: the table look-up and blend paths below

    p.i0x = p.ax.i0;
    p.i1x = p.ax.i1;
    p.w1x = p.ax.w1;
    p.i0y = p.ay.i0;
    p.i1y = p.ay.i1;
    p.w1y = p.ay.w1;
    // Run takes the padding as its output value (uint8: mul 1, add 0.5 truncates back to the pad byte).
    for (int c = 0; c < 3; c++) p.pad[c] = p.pad[c] * p.mul[c] + p.add[c];
    if (dtype == kF32) Run<kF32>(srcData, reinterpret_cast<float*>(base), p);
    else if (dtype == kF16) Run<kF16>(srcData, reinterpret_cast<uint16_t*>(base), p);
    else Run<kU8>(srcData, base, p);
  } else {
    if (dtype == kF32) RunGeneral<kF32>(srcData, reinterpret_cast<float*>(base), p);
    else if (dtype == kF16) RunGeneral<kF16>(srcData, reinterpret_cast<uint16_t*>(base), p);
    else RunGeneral<kU8>(srcData, base, p);
  }
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tensor", Napi::Function::New(env, Tensor, "tensor"));
  return exports;
}

}  // namespace

NODE_API_MODULE(edge_tensor, Init)
