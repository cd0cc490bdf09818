// Compressed gradient sums: error-feedback invariants (bit for bit), the
// codecs' rounding bounds, the bytes each mode puts on the wire (counted by the
// communicator, equal to the analytic figure), and that every replica ends
// with the same bits.

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "core/comm/allreduce_algorithms.h"
#include "core/comm/communicator.h"
#include "core/comm/local/local_world.h"
#include "data_parallel/compression/gradient_sync.h"
#include "data_parallel/compression/int8_codec.h"
#include "data_parallel/compression/powersgd.h"
#include "data_parallel/compression/scaled_half_codec.h"
#include "data_parallel/compression/topk.h"
#include "gtest/gtest.h"

namespace trident::data_parallel {
namespace {

uint32_t Bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof(b));
  return b;
}

// Gradient-like data of rank `rank` at step `step`: normal values whose scale
// varies by block over 2^-20 .. 2^4, a few exact zeros and negative zeros.
std::vector<float> GradientOf(int rank, int step, int64_t count) {
  std::mt19937 gen(1000 * rank + step + 17);
  std::normal_distribution<float> normal;
  std::vector<float> g(count);
  for (int64_t i = 0; i < count; ++i) {
    const int exponent = static_cast<int>((i / 500 + rank) % 25) - 20;
    g[i] = std::ldexp(normal(gen), exponent);
    if (i % 97 == 0) g[i] = 0.0f;
    if (i % 101 == 0) g[i] = -0.0f;
  }
  return g;
}

// ---------------------------------------------------------------------------
// Error feedback: what was sent plus the new residual is the accumulated
// gradient v = fl(g + r), exactly, at every step.

TEST(ErrorFeedback, Int8SentPlusResidualIsTheAccumulatedGradientBitForBit) {
  for (int ranks : {1, 3, 4}) {
    const int64_t count = 3 * kInt8Block * ranks + 1234;
    std::vector<float> residual(count, 0.0f);
    for (int step = 0; step < 5; ++step) {
      const std::vector<float> g = GradientOf(0, step, count);
      std::vector<float> v(count);
      for (int64_t i = 0; i < count; ++i) v[i] = g[i] + residual[i];
      std::vector<float> sent = g;
      Int8QuantizeWithErrorFeedback(ranks, absl::MakeSpan(sent), absl::MakeSpan(residual));
      int64_t mismatches = 0, changed = 0;
      for (int64_t i = 0; i < count; ++i) {
        mismatches += Bits(sent[i] + residual[i]) != Bits(v[i]) ? 1 : 0;
        changed += sent[i] != v[i] ? 1 : 0;
      }
      EXPECT_EQ(mismatches, 0) << "ranks=" << ranks << " step=" << step;
      EXPECT_GT(changed, count / 2) << "int8 must actually round most values";
    }
  }
}

TEST(ErrorFeedback, TopKSentPlusResidualIsTheAccumulatedGradientBitForBit) {
  const int64_t count = 10007;
  std::vector<float> residual(count, 0.0f);
  for (int step = 0; step < 5; ++step) {
    const std::vector<float> g = GradientOf(1, step, count);
    std::vector<float> v(count);
    for (int64_t i = 0; i < count; ++i) v[i] = g[i] + residual[i];
    std::vector<int32_t> indices;
    std::vector<float> values;
    const int64_t k = KOfRatio(0.01, count);
    TopKWithErrorFeedback(g, absl::MakeSpan(residual), k, indices, values);
    ASSERT_EQ(static_cast<int64_t>(indices.size()), k);
    std::vector<float> sent(count, 0.0f);
    for (size_t j = 0; j < indices.size(); ++j) sent[indices[j]] = values[j];
    int64_t mismatches = 0;
    for (int64_t i = 0; i < count; ++i) mismatches += Bits(sent[i] + residual[i]) != Bits(v[i]);
    EXPECT_EQ(mismatches, 0) << "step=" << step;
    // The picked entries are the largest: nothing left behind is larger.
    float smallest_sent = INFINITY, largest_kept = 0;
    for (float x : values) smallest_sent = std::min(smallest_sent, std::fabs(x));
    for (float x : residual) largest_kept = std::max(largest_kept, std::fabs(x));
    EXPECT_LE(largest_kept, smallest_sent);
  }
}

TEST(TopK, LargestMagnitudesBreaksTiesByIndexAndSortsIndices) {
  const std::vector<float> v = {1, -3, 3, 0, 2, -3};
  EXPECT_EQ(LargestMagnitudes(v, 3), (std::vector<int32_t>{1, 2, 5}));
  EXPECT_EQ(LargestMagnitudes(v, 2), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(LargestMagnitudes(v, 0), (std::vector<int32_t>{}));
}

TEST(TopK, AdaptiveKFollowsTheMovingAverageWithinItsClamp) {
  EXPECT_DOUBLE_EQ(MeasuredSparsity(std::vector<float>{10, 0.05f, -0.2f, 0}, 0.01), 0.5);
  EXPECT_DOUBLE_EQ(MeasuredSparsity(std::vector<float>{0, 0}, 0.01), 0.0);
  AdaptiveK k(/*min_ratio=*/0.01, /*max_ratio=*/0.5, /*beta=*/0.5);
  // Sparsities in eighths keep the arithmetic exact.
  EXPECT_EQ(k.Next(0.875, 1000), 125);  // s = 0.875: ceil(0.125 * 1000).
  EXPECT_EQ(k.Next(0.625, 1000), 250);  // s = 0.75.
  EXPECT_EQ(k.Next(0.0, 1000), 500);    // s = 0.375: 625 clamped to 500.
  EXPECT_EQ(k.Next(1.0, 1000), 313);    // s = 0.6875: ceil(312.5).
  AdaptiveK floor(0.05, 0.5, 0.0);
  EXPECT_EQ(floor.Next(1.0, 1000), 50);  // 0 clamped to ceil(0.05 * 1000).
}

// PowerSGD's residual is v minus a product, so it is exact only up to that
// one subtraction's rounding: |v - (S + E)| <= 2^-24 |E| per element, checked
// in double (where S + E of two floats within 2^29 of each other is exact;
// the bound is checked with slack 2^-40 |v| for the rest).
TEST(ErrorFeedback, PowerSgdSentPlusResidualIsTheAccumulatedGradientUpToOneRounding) {
  const std::vector<BucketMatrix> matrices = {{.offset = 0, .rows = 40, .cols = 24},
                                              {.offset = 960 + 7, .rows = 16, .cols = 32}};
  const int64_t size = 960 + 7 + 512 + 5;
  ASSERT_TRUE(comm::RunLocalRanks(1, [&](int, comm::Communicator& dp) {
                PowerSgdBucket bucket(size, matrices, /*rank=*/2, /*start_step=*/0, 7);
                EXPECT_EQ(bucket.compressed().size(), 2u);
                EXPECT_EQ(bucket.uncompressed_elements(), 7 + 5);
                std::vector<float> previous(size, 0.0f);
                for (int step = 0; step < 4; ++step) {
                  std::vector<float> g = GradientOf(0, step, size);
                  std::vector<float> v(size);
                  for (int64_t i = 0; i < size; ++i) v[i] = g[i] + previous[i];
                  if (absl::Status s = bucket.Sum(dp, comm::AllReduceAlgorithm::kNative,
                                                  absl::MakeSpan(g));
                      !s.ok()) {
                    return s;
                  }
                  int64_t outside = 0, nonzero_residual = 0;
                  for (int64_t i = 0; i < size; ++i) {
                    const double sent = bucket.last_sent()[i], e = bucket.residual()[i];
                    const double gap = std::fabs(double{v[i]} - (sent + e));
                    const double bound =
                        std::ldexp(std::fabs(e), -24) + std::ldexp(std::fabs(v[i]), -40);
                    if (!(gap <= bound)) ++outside;
                    nonzero_residual += e != 0 ? 1 : 0;
                  }
                  EXPECT_EQ(outside, 0) << "step " << step;
                  EXPECT_GT(nonzero_residual, size / 2) << "rank 2 must leave most of M behind";
                  previous.assign(bucket.residual().begin(), bucket.residual().end());
                }
                return absl::OkStatus();
              }).ok());
}

// A sum of rank-1 matrices whose column spaces agree is rank 1: PowerSGD with
// r = 1 recovers it (to fp32 rounding), and the uncompressed 1-D elements
// are the native sum bit for bit. The all-reduces carry r (rows + cols) per
// matrix plus the uncompressed elements.
TEST(PowerSgd, RecoversALowRankSumAndSendsItsFactors) {
  const int n = 3;
  const int64_t rows = 30, cols = 20, tail = 9;
  const std::vector<BucketMatrix> matrices = {{.offset = 0, .rows = rows, .cols = cols}};
  const int64_t size = rows * cols + tail;
  const auto data = [&](int rank) {
    std::vector<float> g(size);
    for (int64_t i = 0; i < rows; ++i) {
      for (int64_t c = 0; c < cols; ++c) {
        g[i * cols + c] = static_cast<float>((i % 7) - 3) * static_cast<float>(rank + 1 + c % 5);
      }
    }
    for (int64_t t = 0; t < tail; ++t) g[rows * cols + t] = 0.1f * (rank + 1) * (t + 1);
    return g;
  };
  ASSERT_TRUE(comm::RunLocalRanks(n, [&](int rank, comm::Communicator& dp) {
                GradientSyncOptions options;
                options.compression = GradientCompression::kPowerSgd;
                options.powersgd_rank = 1;
                GradientSync sync(options);
                sync.DescribeBucket(0, matrices);
                std::vector<float> g = data(rank), native = data(rank);
                dp.ResetStats();
                if (absl::Status s = sync.Sum(dp, 0, absl::MakeSpan(g)); !s.ok()) return s;
                EXPECT_EQ(dp.stats().bytes_of(comm::CommOp::kAllReduce),
                          4 * (rows + cols + tail));
                if (absl::Status s = dp.AllReduce(comm::MakeBuffer(absl::MakeSpan(native)),
                                                  comm::ReduceOp::kSum);
                    !s.ok()) {
                  return s;
                }
                double worst = 0, scale = 0;
                for (int64_t i = 0; i < rows * cols; ++i) {
                  worst = std::max(worst, double{std::fabs(g[i] - native[i])});
                  scale = std::max(scale, double{std::fabs(native[i])});
                }
                EXPECT_LE(worst, 1e-5 * scale);
                for (int64_t t = rows * cols; t < size; ++t) {
                  EXPECT_EQ(Bits(g[t]), Bits(native[t])) << t;
                }
                return absl::OkStatus();
              }).ok());
}

TEST(PowerSgd, StepsBeforeTheStartAreSummedUncompressed) {
  const std::vector<BucketMatrix> matrices = {{.offset = 0, .rows = 32, .cols = 32}};
  ASSERT_TRUE(comm::RunLocalRanks(2, [&](int rank, comm::Communicator& dp) {
                PowerSgdBucket bucket(1024, matrices, 4, /*start_step=*/2, 1);
                for (int step = 0; step < 3; ++step) {
                  std::vector<float> g = GradientOf(rank, step, 1024);
                  dp.ResetStats();
                  if (absl::Status s = bucket.Sum(dp, comm::AllReduceAlgorithm::kNative,
                                                  absl::MakeSpan(g));
                      !s.ok()) {
                    return s;
                  }
                  EXPECT_EQ(dp.stats().bytes_of(comm::CommOp::kAllReduce),
                            step < 2 ? 4 * 1024 : 4 * (4 * 32 + 4 * 32))
                      << "step " << step;
                }
                return absl::OkStatus();
              }).ok());
}

// ---------------------------------------------------------------------------
// Codecs.

TEST(Int8Codec, RoundsToNearestWithinHalfAScaleAndIsIdempotent) {
  const int64_t count = 2 * kInt8Block + 5;
  const std::vector<float> x = GradientOf(2, 0, count);
  const Int8Codec codec;
  std::vector<int32_t> wire(codec.WireCount(count)), again(codec.WireCount(count));
  std::vector<float> y(count);
  codec.Encode(x.data(), count, wire.data());
  codec.DecodeCopy(wire.data(), count, y.data());
  for (int64_t start = 0; start < count; start += kInt8Block) {
    const int64_t end = std::min(count, start + kInt8Block);
    float max_abs = 0;
    for (int64_t i = start; i < end; ++i) max_abs = std::max(max_abs, std::fabs(x[i]));
    const float scale = Int8BlockScale(max_abs);
    EXPECT_LE(max_abs / scale, 127.0f);
    EXPECT_GT(max_abs / (scale / 2), 127.0f) << "the smallest such power of two";
    for (int64_t i = start; i < end; ++i) {
      ASSERT_LE(std::fabs(y[i] - x[i]), scale / 2) << i;
    }
  }
  codec.Encode(y.data(), count, again.data());
  EXPECT_EQ(wire, again) << "decoded values re-encode to the same wire";
  EXPECT_EQ(Int8WireWords(2048), 513);
  EXPECT_EQ(Int8WireWords(2049), 515);
  EXPECT_EQ(Int8WireWords(0), 0);
}

TEST(ScaledHalfCodec, DynamicScaleAvoidsFp16OverflowAndStaticScaleIsExact) {
  EXPECT_EQ(DynamicHalfScale(1.0f), 16384.0f);      // 1 -> 2^14.
  EXPECT_EQ(DynamicHalfScale(1e6f), 0x1.0p-5f);     // 1e6 in [2^19, 2^20) -> [2^14, 2^15).
  EXPECT_EQ(DynamicHalfScale(0.0f), 1.0f);
  const std::vector<float> x = {1e6f, -3e5f, 1e-3f, 0.0f};
  const ScaledHalfCodec dynamic(DType::kFloat16, CompressionScaling::kDynamic, 1.0f);
  std::vector<uint16_t> wire(dynamic.WireCount(4));
  std::vector<float> y(4);
  dynamic.Encode(x.data(), 4, wire.data());
  dynamic.DecodeCopy(wire.data(), 4, y.data());
  for (int i = 0; i < 4; ++i) {
    EXPECT_LE(std::fabs(y[i] - x[i]), std::fabs(x[i]) * 0x1.0p-11f + 1e-6f) << i;
  }
  // Unscaled, 1e6 would be infinity in fp16.
  const ScaledHalfCodec unscaled(DType::kFloat16, CompressionScaling::kStatic, 1.0f);
  unscaled.Encode(x.data(), 4, wire.data());
  unscaled.DecodeCopy(wire.data(), 4, y.data());
  EXPECT_TRUE(std::isinf(y[0]));
  // bf16 with a static power-of-two scale: exactly bf16 rounding of x.
  const ScaledHalfCodec bf16(DType::kBFloat16, CompressionScaling::kStatic, 1024.0f);
  bf16.Encode(x.data(), 4, wire.data());
  bf16.DecodeCopy(wire.data(), 4, y.data());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(y[i], ToFloat(ToBFloat16(x[i]))) << i;
}

// ---------------------------------------------------------------------------
// GradientSync on the local backend.

struct ModeCase {
  std::string name;
  GradientSyncOptions options;
};

std::vector<ModeCase> AllModes() {
  std::vector<ModeCase> modes;
  const auto add = [&](std::string name, auto change) {
    GradientSyncOptions o;
    change(o);
    modes.push_back({std::move(name), o});
  };
  add("native", [](GradientSyncOptions&) {});
  add("ring", [](GradientSyncOptions& o) { o.algorithm = comm::AllReduceAlgorithm::kRing; });
  add("tree", [](GradientSyncOptions& o) { o.algorithm = comm::AllReduceAlgorithm::kTree; });
  add("bf16", [](GradientSyncOptions& o) { o.compression = GradientCompression::kBf16; });
  add("fp16 dynamic", [](GradientSyncOptions& o) { o.compression = GradientCompression::kFp16; });
  add("fp16 static", [](GradientSyncOptions& o) {
    o.compression = GradientCompression::kFp16;
    o.scaling = CompressionScaling::kStatic;
    o.static_scale = 256.0f;
  });
  add("int8", [](GradientSyncOptions& o) { o.compression = GradientCompression::kInt8; });
  add("topk", [](GradientSyncOptions& o) { o.compression = GradientCompression::kTopK; });
  add("topk adaptive", [](GradientSyncOptions& o) {
    o.compression = GradientCompression::kTopK;
    o.topk_adaptive = true;
  });
  return modes;
}

// What each rank sends and gathers per bucket of `d` elements (n divides d,
// d / n a multiple of kInt8Block), from the formulas of gradient_sync.h.
struct Traffic {
  int64_t all_reduce = 0, all_gather = 0, send = 0;
};
Traffic AnalyticTraffic(const GradientSyncOptions& o, int64_t d, int n) {
  Traffic t;
  const int64_t segment = d / n;
  switch (o.compression) {
    case GradientCompression::kNone:
      if (o.algorithm == comm::AllReduceAlgorithm::kNative) t.all_reduce = 4 * d;
      if (o.algorithm == comm::AllReduceAlgorithm::kRing) t.send = 2 * (n - 1) * segment * 4;
      if (o.algorithm == comm::AllReduceAlgorithm::kTree) {
        // Each rank of the first test (rank 0, the root) sends to its children.
        t.send = -1;  // Checked in RingAndTreeSendTheirAnalyticBytes instead.
      }
      break;
    case GradientCompression::kBf16:
    case GradientCompression::kFp16:
      t.send = n == 1 ? 0 : 2 * (n - 1) * (segment + 2) * 2;
      break;
    case GradientCompression::kInt8:
      t.send = n == 1 ? 0 : 2 * (n - 1) * (segment / kInt8Block) * (1 + kInt8Block / 4) * 4;
      break;
    case GradientCompression::kTopK:
      if (!o.topk_adaptive) {
        t.all_gather = 2 * n * KOfRatio(o.topk_ratio, d) * 4;
      } else {
        t.all_reduce = 4;
        t.all_gather = -1;  // K depends on the data; checked against topk_k().
      }
      break;
  }
  return t;
}

TEST(GradientSync, EveryModeSendsItsAnalyticBytesAndLeavesEveryReplicaIdentical) {
  for (int n : {1, 2, 3, 4}) {
    const int64_t d = static_cast<int64_t>(n) * 2 * kInt8Block;
    for (const ModeCase& mode : AllModes()) {
      SCOPED_TRACE(absl::StrCat(mode.name, " n=", n));
      std::vector<std::vector<float>> results(n);
      const absl::Status status = comm::RunLocalRanks(n, [&](int rank, comm::Communicator& dp) {
        GradientSync sync(mode.options);
        std::vector<float> g;
        for (int step = 0; step < 3; ++step) {
          g = GradientOf(rank, step, d);
          dp.ResetStats();
          if (absl::Status s = sync.Sum(dp, /*bucket=*/0, absl::MakeSpan(g)); !s.ok()) return s;
          const Traffic expected = AnalyticTraffic(mode.options, d, n);
          const comm::CommStats& stats = dp.stats();
          EXPECT_EQ(stats.bytes_of(comm::CommOp::kAllReduce), expected.all_reduce);
          if (expected.send >= 0) {
            EXPECT_EQ(stats.bytes_of(comm::CommOp::kSend), expected.send);
            EXPECT_EQ(stats.bytes_of(comm::CommOp::kRecv), expected.send);
          }
          if (expected.all_gather >= 0) {
            EXPECT_EQ(stats.bytes_of(comm::CommOp::kAllGather), expected.all_gather);
          } else {
            EXPECT_EQ(stats.bytes_of(comm::CommOp::kAllGather),
                      2 * n * sync.topk_k().at(0) * 4);
          }
        }
        results[rank] = g;
        return absl::OkStatus();
      });
      ASSERT_TRUE(status.ok()) << status;
      for (int r = 1; r < n; ++r) {
        EXPECT_EQ(std::memcmp(results[0].data(), results[r].data(), d * sizeof(float)), 0)
            << "rank " << r << " differs from rank 0";
      }
    }
  }
}

// The sum each mode delivers, against the exact sum (double), within the
// mode's stated rounding: bf16 and fp16 round every hop's partial sum once
// (n - 1 reduce-scatter hops and one all-gather encode: n roundings of at
// most 2^-9 resp. 2^-11 relative, plus fp32 additions), int8 at most half a
// block scale per hop, each scale <= 2 max|partial| / 127. Top-K at ratio 1
// sends everything: the native sum, bit for bit (same rank order). NaN fails
// every comparison.
TEST(GradientSync, CompressedSumsAreWithinTheirRoundingOfTheExactSum) {
  const int n = 4;
  const int64_t d = 3 * kInt8Block + 11;
  struct Expectation {
    GradientCompression mode;
    double relative;  // Of sum_r |x_r| per element; 0: use the int8 bound.
  };
  for (const Expectation& e : {Expectation{GradientCompression::kBf16, n * 0x1.0p-8},
                               Expectation{GradientCompression::kFp16, n * 0x1.0p-10},
                               Expectation{GradientCompression::kInt8, 0}}) {
    GradientSyncOptions options;
    options.compression = e.mode;
    std::vector<float> result;
    ASSERT_TRUE(comm::RunLocalRanks(n, [&](int rank, comm::Communicator& dp) {
                  GradientSync sync(options);
                  std::vector<float> g = GradientOf(rank, 0, d);
                  if (absl::Status s = sync.Sum(dp, 0, absl::MakeSpan(g)); !s.ok()) return s;
                  if (rank == 0) result = g;
                  return absl::OkStatus();
                }).ok());
    std::vector<double> exact(d, 0.0), magnitude(d, 0.0);
    for (int r = 0; r < n; ++r) {
      const std::vector<float> g = GradientOf(r, 0, d);
      for (int64_t i = 0; i < d; ++i) {
        exact[i] += g[i];
        magnitude[i] += std::fabs(g[i]);
      }
    }
    double block_max = 0;  // Largest sum of magnitudes: bounds every partial sum.
    for (double m : magnitude) block_max = std::max(block_max, m);
    int64_t outside = 0;
    for (int64_t i = 0; i < d; ++i) {
      const double bound = e.relative > 0 ? e.relative * magnitude[i] + 1e-30
                                          : n * (2 * block_max / 127) / 2;
      if (!(std::fabs(result[i] - exact[i]) <= bound)) ++outside;
    }
    EXPECT_EQ(outside, 0) << static_cast<int>(e.mode);
  }
  // Top-K with ratio 1 is the native all-reduce.
  GradientSyncOptions all;
  all.compression = GradientCompression::kTopK;
  all.topk_ratio = 1.0;
  std::vector<float> topk, native;
  ASSERT_TRUE(comm::RunLocalRanks(n, [&](int rank, comm::Communicator& dp) {
                std::vector<float> g = GradientOf(rank, 0, d), h = g;
                GradientSync sync(all);
                if (absl::Status s = sync.Sum(dp, 0, absl::MakeSpan(g)); !s.ok()) return s;
                if (absl::Status s = dp.AllReduce(comm::MakeBuffer(absl::MakeSpan(h)),
                                                  comm::ReduceOp::kSum);
                    !s.ok()) {
                  return s;
                }
                if (rank == 0) {
                  topk = g;
                  native = h;
                }
                return absl::OkStatus();
              }).ok());
  int64_t differing = 0;
  for (int64_t i = 0; i < d; ++i) {
    if (Bits(topk[i]) != Bits(native[i])) {
      if (differing++ < 3) {
        ADD_FAILURE() << "element " << i << ": " << topk[i] << " vs " << native[i];
      }
    }
  }
  EXPECT_EQ(differing, 0);
}

TEST(GradientSync, StaticFp16OverflowFailsTheStepNamingTheScale) {
  GradientSyncOptions options;
  options.compression = GradientCompression::kFp16;
  options.scaling = CompressionScaling::kStatic;
  options.static_scale = 1024.0f;
  const absl::Status status = comm::RunLocalRanks(2, [&](int, comm::Communicator& dp) {
    GradientSync sync(options);
    std::vector<float> g(64, 100.0f);  // 100 * 1024 > 65504.
    return sync.Sum(dp, 3, absl::MakeSpan(g));
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_NE(status.message().find("scale 1024"), std::string::npos) << status;
  EXPECT_NE(status.message().find("compression_scaling=dynamic"), std::string::npos) << status;
}

TEST(GradientSync, NonFiniteGradientsAreNotCompressed) {
  GradientSyncOptions options;
  options.compression = GradientCompression::kInt8;
  const absl::Status status = comm::RunLocalRanks(2, [&](int, comm::Communicator& dp) {
    GradientSync sync(options);
    std::vector<float> g(64, 1.0f);
    g[5] = NAN;
    return sync.Sum(dp, 0, absl::MakeSpan(g));
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find("bucket 0 element 5 is nan"), std::string::npos) << status;
}


// ---------------------------------------------------------------------------
// Checkpoints: a sync restored from another's ExportState continues exactly
// as the original would have, and a state of other shapes is refused whole.

// Two buckets of every lossy mode over 2 ranks: steps [0, 6) uninterrupted,
// against steps [0, 3), ExportState, a fresh GradientSync, RestoreState, then
// steps [3, 6). Every sum must match bit for bit (adaptive K moves the K of
// later steps, PowerSGD warm-starts from Q and starts compressing at step 2).
TEST(GradientSync, RestoredStateContinuesBitForBit) {
  constexpr int kRanks = 2;
  const std::vector<int64_t> sizes = {2 * 2 * kInt8Block, 960 + 7 + 512 + 5};
  const std::vector<BucketMatrix> matrices = {{.offset = 0, .rows = 40, .cols = 24},
                                              {.offset = 960 + 7, .rows = 16, .cols = 32}};
  std::vector<ModeCase> modes;
  for (const ModeCase& mode : AllModes()) {
    if (mode.options.compression == GradientCompression::kInt8 ||
        mode.options.compression == GradientCompression::kTopK) {
      modes.push_back(mode);
    }
  }
  GradientSyncOptions powersgd;
  powersgd.compression = GradientCompression::kPowerSgd;
  powersgd.powersgd_rank = 2;
  powersgd.powersgd_start_step = 2;
  modes.push_back({"powersgd", powersgd});
  for (const ModeCase& mode : modes) {
    SCOPED_TRACE(mode.name);
    // sums[interrupted][rank]: every step's buckets, concatenated.
    std::vector<float> sums[2][kRanks];
    for (const bool interrupted : {false, true}) {
      const absl::Status status =
          comm::RunLocalRanks(kRanks, [&](int rank, comm::Communicator& dp) -> absl::Status {
            auto sync = std::make_unique<GradientSync>(mode.options);
            sync->DescribeBucket(1, matrices);
            for (int step = 0; step < 6; ++step) {
              if (interrupted && step == 3) {
                const std::vector<BucketSyncState> saved = sync->ExportState();
                EXPECT_EQ(saved.size(), 2u);
                sync = std::make_unique<GradientSync>(mode.options);
                sync->DescribeBucket(1, matrices);
                if (absl::Status s = sync->RestoreState(saved, sizes); !s.ok()) return s;
              }
              for (int bucket = 0; bucket < 2; ++bucket) {
                std::vector<float> g = GradientOf(rank, 10 * step + bucket, sizes[bucket]);
                if (absl::Status s = sync->Sum(dp, bucket, absl::MakeSpan(g)); !s.ok()) return s;
                sums[interrupted][rank].insert(sums[interrupted][rank].end(), g.begin(), g.end());
              }
            }
            return absl::OkStatus();
          });
      ASSERT_TRUE(status.ok()) << status;
    }
    for (int rank = 0; rank < kRanks; ++rank) {
      ASSERT_EQ(sums[0][rank].size(), sums[1][rank].size());
      int64_t mismatches = 0;
      for (size_t i = 0; i < sums[0][rank].size(); ++i) {
        mismatches += Bits(sums[0][rank][i]) != Bits(sums[1][rank][i]) ? 1 : 0;
      }
      EXPECT_EQ(mismatches, 0) << "rank " << rank;
    }
  }
}

TEST(GradientSync, RestoreRefusesStateOfOtherShapesAndChangesNothing) {
  GradientSyncOptions options;
  options.compression = GradientCompression::kTopK;
  GradientSync sync(options);
  BucketSyncState good{.bucket = 0, .residual = std::vector<float>(8, 1.0f)};
  ASSERT_TRUE(sync.RestoreState({good}, {8}).ok());

  BucketSyncState short_residual{.bucket = 0, .residual = std::vector<float>(7, 2.0f)};
  absl::Status refused = sync.RestoreState({short_residual}, {8});
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("bucket 0: the residual has 7 elements; the bucket has 8"),
            std::string::npos)
      << refused;
  BucketSyncState missing_bucket{.bucket = 3, .residual = std::vector<float>(8, 2.0f)};
  EXPECT_FALSE(sync.RestoreState({missing_bucket}, {8}).ok());
  BucketSyncState powersgd_state{.bucket = 0, .residual = std::vector<float>(8, 2.0f),
                                 .powersgd_steps = 1};
  refused = sync.RestoreState({powersgd_state}, {8});
  EXPECT_NE(refused.message().find("does not use PowerSGD"), std::string::npos) << refused;
  ASSERT_EQ(sync.residual(0).size(), 8u);
  EXPECT_EQ(sync.residual(0)[0], 1.0f);  // Unchanged by the refusals.

  GradientSyncOptions p;
  p.compression = GradientCompression::kPowerSgd;
  p.powersgd_rank = 2;
  GradientSync powersgd(p);
  powersgd.DescribeBucket(0, {{.offset = 0, .rows = 8, .cols = 8}});
  BucketSyncState wrong_q{.bucket = 0, .residual = std::vector<float>(64, 0.0f),
                          .powersgd_steps = 2,
                          .powersgd_q = {std::vector<float>(15, 0.0f)}};
  BucketSyncState no_steps{.bucket = 0, .residual = std::vector<float>(64, 0.0f)};
  refused = powersgd.RestoreState({no_steps}, {64});
  EXPECT_NE(refused.message().find("without PowerSGD's step count"), std::string::npos) << refused;
  refused = powersgd.RestoreState({wrong_q}, {64});
  EXPECT_NE(refused.message().find("Q of matrix 0 has 15 elements; expected 16"),
            std::string::npos)
      << refused;
}

}  // namespace
}  // namespace trident::data_parallel
