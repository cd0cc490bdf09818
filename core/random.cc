#include "core/random.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/types/span.h"
#include "core/check.h"

namespace trident {
namespace {

// Philox4x32 round multipliers and Weyl key increments (Salmon et al. 2011).
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // Golden ratio.
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1.

inline void PhiloxRound(std::array<uint32_t, 4>& c, const std::array<uint32_t, 2>& k) {
  const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c[0];
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c[2];
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
}

// 53 random bits from two words as a double in [0, 1).
inline double UnitDouble(uint32_t hi, uint32_t lo) {
  const uint64_t bits = ((static_cast<uint64_t>(hi) << 32) | lo) >> 11;
  return static_cast<double>(bits) * 0x1.0p-53;
}

inline std::array<uint32_t, 4> Block(uint64_t seed, uint64_t name_hash, uint64_t j) {
  return Philox4x32_10({static_cast<uint32_t>(j), static_cast<uint32_t>(j >> 32),
                        static_cast<uint32_t>(name_hash), static_cast<uint32_t>(name_hash >> 32)},
                       {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)});
}

// The two standard normals of pair j.
inline std::array<double, 2> NormalPair(uint64_t seed, uint64_t name_hash, uint64_t j) {
  const std::array<uint32_t, 4> w = Block(seed, name_hash, j);
  const double u1 = UnitDouble(w[0], w[1]) + 0x1.0p-53;  // (0, 1]: log stays finite.
  const double u2 = UnitDouble(w[2], w[3]);
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  return {r * std::cos(theta), r * std::sin(theta)};
}

// The tensor as a matrix [rows, cols] with a row stride, plus its shard geometry.
struct MatrixView {
  float* data;
  int64_t rows;
  int64_t cols;
  int64_t row_stride;
};

MatrixView AsMatrix(const ExecContext& ctx, const Tensor& t, const char* what) {
  TRIDENT_CHECK(t.defined()) << what << " of an undefined tensor";
  TRIDENT_CHECK(t.device().is_cpu() && ctx.device().is_cpu())
      << what << " fills CPU tensors (got " << t.DebugString() << " with a " << ctx.device()
      << " context); initialise on the host and copy";
  TRIDENT_CHECK(t.dtype() == DType::kFloat32)
      << what << " fills fp32 tensors, got " << t.DebugString();
  MatrixView m;
  m.data = t.data<float>();
  if (t.ndim() == 0) {
    m.rows = 1;
    m.cols = 1;
    m.row_stride = 1;
  } else if (t.is_contiguous()) {
    m.cols = t.dim(-1);
    m.rows = m.cols == 0 ? 0 : t.numel() / m.cols;
    m.row_stride = m.cols;
  } else {
    TRIDENT_CHECK(t.ndim() <= 2 && t.stride(-1) == 1)
        << what << " needs a contiguous tensor or a 1-/2-D view with unit column stride, got "
        << t.DebugString();
    m.cols = t.dim(-1);
    m.rows = t.ndim() == 2 ? t.dim(0) : 1;
    m.row_stride = t.ndim() == 2 ? t.stride(0) : m.cols;
  }
  return m;
}

struct Geometry {
  int64_t global_cols;
  int64_t row_offset;
  int64_t col_offset;
};

Geometry ResolveShard(const MatrixView& m, const MatrixShard& shard, const char* what) {
  Geometry g;
  const int64_t global_rows = shard.global_rows < 0 ? m.rows : shard.global_rows;
  g.global_cols = shard.global_cols < 0 ? m.cols : shard.global_cols;
  g.row_offset = shard.row_offset;
  g.col_offset = shard.col_offset;
  TRIDENT_CHECK(g.row_offset >= 0 && g.row_offset + m.rows <= global_rows)
      << what << ": rows [" << g.row_offset << ", " << g.row_offset + m.rows
      << ") fall outside the full matrix's " << global_rows << " rows";
  TRIDENT_CHECK(g.col_offset >= 0 && g.col_offset + m.cols <= g.global_cols)
      << what << ": cols [" << g.col_offset << ", " << g.col_offset + m.cols
      << ") fall outside the full matrix's " << g.global_cols << " cols";
  return g;
}

// Rows per parallel chunk: generating is ~50 ns per element, so a few thousand
// elements per chunk amortise the fork.
int64_t MinRowsPerChunk(int64_t cols) {
  return std::max<int64_t>(1, 4096 / std::max<int64_t>(cols, 1));
}

// A fill of a tensor on another device (a GPU parameter): the same fill into
// a contiguous host tensor of its shape (same [rows, cols] geometry, hence the
// same values), then copied up, row by row for a strided view (each row of a
// view with unit column stride is contiguous). The copies are the allocator's
// synchronous ones: initialisation, not the hot path. False for a CPU tensor.
template <typename HostFill>
bool FilledThroughHost(const ExecContext& ctx, const Tensor& tensor, const char* what,
                       HostFill fill) {
  TRIDENT_CHECK(tensor.defined()) << what << " of an undefined tensor";
  if (tensor.device().is_cpu()) return false;
  TRIDENT_CHECK(tensor.device() == ctx.device())
      << what << " of " << tensor.DebugString() << " with a " << ctx.device() << " context";
  const Tensor host = Tensor::Empty(tensor.shape(), DType::kFloat32);
  // Every core: a GPU rank's context has one CPU thread, and GPT-2's 124 M
  // values take seconds on one.
  fill(ExecContext::Cpu(AvailableCores()), host);
  const float* values = host.data<float>();
  if (tensor.is_contiguous()) {
    tensor.CopyFrom(absl::MakeConstSpan(values, static_cast<size_t>(tensor.numel())));
    return true;
  }
  TRIDENT_CHECK(tensor.ndim() == 2 && tensor.stride(-1) == 1)
      << what << " needs a contiguous tensor or a 2-D view with unit column stride, got "
      << tensor.DebugString();
  const int64_t cols = tensor.dim(1);
  for (int64_t r = 0; r < tensor.dim(0); ++r) {
    tensor.Slice(0, r, 1).CopyFrom(
        absl::MakeConstSpan(values + r * cols, static_cast<size_t>(cols)));
  }
  return true;
}

}  // namespace

std::array<uint32_t, 4> Philox4x32_10(std::array<uint32_t, 4> counter,
                                      std::array<uint32_t, 2> key) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      key[0] += kPhiloxW0;
      key[1] += kPhiloxW1;
    }
    PhiloxRound(counter, key);
  }
  return counter;
}

uint64_t NameHash(absl::string_view name) {
  uint64_t hash = 0xcbf29ce484222325ull;  // FNV offset basis.
  for (unsigned char ch : name) {
    hash ^= ch;
    hash *= 0x100000001b3ull;  // FNV prime.
  }
  return hash;
}

float NormalValue(uint64_t seed, uint64_t name_hash, int64_t global_index, float std) {
  const std::array<double, 2> z =
      NormalPair(seed, name_hash, static_cast<uint64_t>(global_index) >> 1);
  return static_cast<float>(std * z[global_index & 1]);
}

float UniformValue(uint64_t seed, uint64_t name_hash, int64_t global_index, float low, float high) {
  const std::array<uint32_t, 4> w = Block(seed, name_hash, static_cast<uint64_t>(global_index));
  const double u = UnitDouble(w[0], w[1]);
  return static_cast<float>(low + (static_cast<double>(high) - low) * u);
}

void FillNormal(const ExecContext& ctx, const Tensor& tensor, uint64_t seed, absl::string_view name,
                float std, const MatrixShard& shard) {
  if (FilledThroughHost(ctx, tensor, "FillNormal",
                        [&](const ExecContext& host_ctx, const Tensor& host) {
                          FillNormal(host_ctx, host, seed, name, std, shard);
                        })) {
    return;
  }
  const MatrixView m = AsMatrix(ctx, tensor, "FillNormal");
  const Geometry g = ResolveShard(m, shard, "FillNormal");
  const uint64_t hash = NameHash(name);
  const double scale = std;
  ctx.ParallelFor(m.rows, MinRowsPerChunk(m.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = m.data + r * m.row_stride;
      const int64_t base = (g.row_offset + r) * g.global_cols + g.col_offset;
      int64_t c = 0;
      while (c < m.cols) {
        const int64_t index = base + c;
        const std::array<double, 2> z = NormalPair(seed, hash, static_cast<uint64_t>(index) >> 1);
        if ((index & 1) == 0 && c + 1 < m.cols) {  // Both elements of the pair are here.
          row[c] = static_cast<float>(scale * z[0]);
          row[c + 1] = static_cast<float>(scale * z[1]);
          c += 2;
        } else {
          row[c] = static_cast<float>(scale * z[index & 1]);
          c += 1;
        }
      }
    }
  });
}

void FillUniform(const ExecContext& ctx, const Tensor& tensor, uint64_t seed,
                 absl::string_view name, float low, float high, const MatrixShard& shard) {
  TRIDENT_CHECK(low <= high) << "FillUniform(" << name << "): low " << low << " > high " << high;
  if (FilledThroughHost(ctx, tensor, "FillUniform",
                        [&](const ExecContext& host_ctx, const Tensor& host) {
                          FillUniform(host_ctx, host, seed, name, low, high, shard);
                        })) {
    return;
  }
  const MatrixView m = AsMatrix(ctx, tensor, "FillUniform");
  const Geometry g = ResolveShard(m, shard, "FillUniform");
  const uint64_t hash = NameHash(name);
  ctx.ParallelFor(m.rows, MinRowsPerChunk(m.cols), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* row = m.data + r * m.row_stride;
      const int64_t base = (g.row_offset + r) * g.global_cols + g.col_offset;
      for (int64_t c = 0; c < m.cols; ++c) row[c] = UniformValue(seed, hash, base + c, low, high);
    }
  });
}

void FillConstant(const ExecContext& ctx, const Tensor& tensor, float value) {
  if (FilledThroughHost(ctx, tensor, "FillConstant",
                        [&](const ExecContext& host_ctx, const Tensor& host) {
                          FillConstant(host_ctx, host, value);
                        })) {
    return;
  }
  const MatrixView m = AsMatrix(ctx, tensor, "FillConstant");
  for (int64_t r = 0; r < m.rows; ++r) {
    float* row = m.data + r * m.row_stride;
    for (int64_t c = 0; c < m.cols; ++c) row[c] = value;
  }
}

}  // namespace trident
