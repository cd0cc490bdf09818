#include "training/compression_checkpoint.h"

#include <cstring>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "core/io/file_util.h"
#include "core/status_macros.h"
#include "training/checkpoint/checkpoint_meta.h"
#include "training/checkpoint/tensor_file.h"

namespace trident::training {
namespace {

using data_parallel::BucketSyncState;

constexpr absl::string_view kPrefix = "compression/";
constexpr absl::string_view kResidual = "residual";
constexpr absl::string_view kTopKSparsity = "topk_sparsity";
constexpr absl::string_view kPowerSgdSteps = "powersgd_steps";
constexpr absl::string_view kPowerSgdQ = "powersgd_q";

std::string TensorName(absl::string_view kind, int bucket) {
  return absl::StrCat(kPrefix, kind, "@", bucket);
}

template <typename T>
absl::Span<const std::byte> BytesOf(const T* data, size_t count) {
  return absl::MakeConstSpan(reinterpret_cast<const std::byte*>(data), count * sizeof(T));
}

absl::string_view MethodName(const topology::ParallelLayout& layout) {
  return topology::GradientCompression::Method_Name(layout.gradient_compression());
}

// "gradient_compression=INT8" or, when the mode keeps state but the job
// does not sum over replicas, what stops it.
std::string DescribeSync(const topology::ParallelLayout& layout) {
  std::string text = absl::StrCat("gradient_compression=", MethodName(layout));
  if (layout.data_parallel() <= 1) absl::StrAppend(&text, " with data_parallel=1");
  if (layout.dp_sync() != topology::DpSync::SYNC) {
    absl::StrAppend(&text, " with dp_sync=", topology::DpSync::Mode_Name(layout.dp_sync()));
  }
  return text;
}

// A parsed "compression/<kind>@<bucket>[.<matrix>]".
struct ParsedName {
  absl::string_view kind;
  int bucket = -1;
  int matrix = -1;
};

bool ParseName(absl::string_view name, ParsedName& parsed) {
  if (!absl::ConsumePrefix(&name, kPrefix)) return false;
  const size_t at = name.find('@');
  if (at == absl::string_view::npos) return false;
  parsed.kind = name.substr(0, at);
  absl::string_view index = name.substr(at + 1);
  if (parsed.kind == kPowerSgdQ) {
    const size_t dot = index.find('.');
    if (dot == absl::string_view::npos ||
        !absl::SimpleAtoi(index.substr(dot + 1), &parsed.matrix) || parsed.matrix < 0) {
      return false;
    }
    index = index.substr(0, dot);
  }
  return absl::SimpleAtoi(index, &parsed.bucket) && parsed.bucket >= 0;
}

}  // namespace

bool KeepsCompressionState(const topology::ParallelLayout& layout) {
  const auto method = layout.gradient_compression();
  const bool error_feedback = method == topology::GradientCompression::INT8 ||
                              method == topology::GradientCompression::TOPK ||
                              method == topology::GradientCompression::POWERSGD;
  return error_feedback && layout.data_parallel() > 1 &&
         layout.dp_sync() == topology::DpSync::SYNC;
}

CompressionStateBlobs::CompressionStateBlobs(std::vector<BucketSyncState> state)
    : state_(std::move(state)) {
  // Filled once, so that the blobs' pointers into them stay valid.
  sparsity_bits_.resize(state_.size());
  powersgd_steps_.resize(state_.size());
  for (size_t i = 0; i < state_.size(); ++i) {
    if (state_[i].topk_sparsity.has_value()) {
      std::memcpy(&sparsity_bits_[i], &*state_[i].topk_sparsity, sizeof(int64_t));
    }
    powersgd_steps_[i] = state_[i].powersgd_steps.value_or(0);
  }
}

void CompressionStateBlobs::AppendTo(std::vector<checkpoint::TensorBlob>& blobs) const {
  for (size_t i = 0; i < state_.size(); ++i) {
    const BucketSyncState& s = state_[i];
    if (!s.residual.empty()) {
      blobs.push_back({TensorName(kResidual, s.bucket), DType::kFloat32,
                       {static_cast<int64_t>(s.residual.size())},
                       BytesOf(s.residual.data(), s.residual.size())});
    }
    if (s.topk_sparsity.has_value()) {
      blobs.push_back({TensorName(kTopKSparsity, s.bucket), DType::kInt64, {},
                       BytesOf(&sparsity_bits_[i], 1)});
    }
    if (s.powersgd_steps.has_value()) {
      blobs.push_back({TensorName(kPowerSgdSteps, s.bucket), DType::kInt64, {},
                       BytesOf(&powersgd_steps_[i], 1)});
      for (size_t k = 0; k < s.powersgd_q.size(); ++k) {
        blobs.push_back({absl::StrCat(TensorName(kPowerSgdQ, s.bucket), ".", k), DType::kFloat32,
                         {static_cast<int64_t>(s.powersgd_q[k].size())},
                         BytesOf(s.powersgd_q[k].data(), s.powersgd_q[k].size())});
      }
    }
  }
}

absl::StatusOr<std::vector<BucketSyncState>> ReadCompressionState(
    const std::string& dir, const checkpoint::CheckpointMeta& meta, int rank) {
  if (rank < 0 || rank >= meta.files_size()) {
    return absl::InvalidArgumentError(absl::StrCat("checkpoint '", dir, "' has ",
                                                   meta.files_size(), " rank files; no rank ",
                                                   rank));
  }
  const checkpoint::RankFile& expected = meta.files(rank);
  const std::string path = io::JoinPath(dir, expected.name());
  ASSIGN_OR_RETURN(const checkpoint::TensorFileIndex index,
                   checkpoint::TensorFileIndex::Open(path));
  if (index.summary().file_size != expected.size() ||
      index.summary().file_crc32c != expected.crc32c()) {
    return absl::DataLossError(absl::StrFormat(
        "checkpoint '%s': '%s' has %d bytes and CRC-32C 0x%08x, but the meta records %d bytes "
        "and 0x%08x: the file does not belong to this checkpoint",
        dir, path, index.summary().file_size, index.summary().file_crc32c, expected.size(),
        expected.crc32c()));
  }
  const auto bad = [&](const std::string& tensor, absl::string_view rule) {
    return absl::DataLossError(
        absl::StrCat("checkpoint '", dir, "': '", path, "' tensor '", tensor, "': ", rule));
  };
  std::map<int, BucketSyncState> by_bucket;
  // PowerSGD's Q's by bucket and matrix index, checked to be 0..n-1 below.
  std::map<int, std::map<int, std::vector<float>>> q_of;
  for (const checkpoint::TensorFileIndex::Tensor& t : index.tensors()) {
    if (!absl::StartsWith(t.name, kPrefix)) continue;
    ParsedName name;
    if (!ParseName(t.name, name)) return bad(t.name, "not a compression state tensor name");
    RETURN_IF_ERROR(index.VerifyTensor(t.name));
    const bool scalar = name.kind == kTopKSparsity || name.kind == kPowerSgdSteps;
    const bool vector = name.kind == kResidual || name.kind == kPowerSgdQ;
    if (!scalar && !vector) return bad(t.name, "unknown kind of compression state");
    if (scalar && (t.dtype != DType::kInt64 || !t.shape.empty())) {
      return bad(t.name, "expected an int64 scalar");
    }
    if (vector && (t.dtype != DType::kFloat32 || t.shape.size() != 1 ||
                   t.size != static_cast<uint64_t>(t.shape[0]) * sizeof(float))) {
      return bad(t.name, "expected a 1-D fp32 tensor");
    }
    BucketSyncState& state = by_bucket[name.bucket];
    state.bucket = name.bucket;
    if (scalar) {
      int64_t value = 0;
      RETURN_IF_ERROR(index.ReadRange(
          t.name, 0, absl::MakeSpan(reinterpret_cast<std::byte*>(&value), sizeof(value))));
      if (name.kind == kPowerSgdSteps) {
        state.powersgd_steps = value;
      } else {
        double sparsity = 0;
        std::memcpy(&sparsity, &value, sizeof(sparsity));
        state.topk_sparsity = sparsity;
      }
      continue;
    }
    std::vector<float> values(t.shape[0]);
    RETURN_IF_ERROR(index.ReadRange(
        t.name, 0,
        absl::MakeSpan(reinterpret_cast<std::byte*>(values.data()), values.size() * sizeof(float))));
    if (name.kind == kResidual) {
      state.residual = std::move(values);
    } else {
      q_of[name.bucket][name.matrix] = std::move(values);
    }
  }
  for (auto& [bucket, matrices] : q_of) {
    BucketSyncState& state = by_bucket[bucket];
    if (!state.powersgd_steps.has_value()) {
      return bad(TensorName(kPowerSgdSteps, bucket), "missing, but the bucket has PowerSGD Q's");
    }
    for (auto& [k, q] : matrices) {
      if (k != static_cast<int>(state.powersgd_q.size())) {
        return bad(absl::StrCat(TensorName(kPowerSgdQ, bucket), ".", state.powersgd_q.size()),
                   "missing (the Q's of a bucket are numbered from 0)");
      }
      state.powersgd_q.push_back(std::move(q));
    }
  }
  std::vector<BucketSyncState> result;
  result.reserve(by_bucket.size());
  for (auto& [bucket, state] : by_bucket) result.push_back(std::move(state));
  return result;
}

CompressionResumePlan PlanCompressionResume(const std::string& dir,
                                            const checkpoint::CheckpointMeta& saved,
                                            const checkpoint::CheckpointMeta& current) {
  const bool held = saved.holds_compression_state();
  const bool kept = KeepsCompressionState(current.layout());
  if (!held && !kept) return {};
  if (held && !kept) {
    return {.restore = false,
            .note = absl::StrCat("checkpoint ", dir, " holds the gradient compression state of ",
                                 DescribeSync(saved.layout()), "; this run has ",
                                 DescribeSync(current.layout()),
                                 ", which keeps none: the state is dropped")};
  }
  if (!held) {
    return {.restore = false,
            .note = absl::StrCat("checkpoint ", dir,
                                 " holds no gradient compression state (an uncompressed run or an "
                                 "older checkpoint): ",
                                 DescribeSync(current.layout()),
                                 " starts its error feedback from zero residuals")};
  }
  const absl::Status same_job = checkpoint::CheckResumeCompatible(dir, saved, current);
  if (!same_job.ok()) {
    return {.restore = false,
            .note = absl::StrCat("gradient compression state of checkpoint ", dir,
                                 " belongs to its own layout's buckets (", same_job.message(),
                                 "): dropped; error feedback restarts from zero residuals")};
  }
  if (saved.layout().tensor_parallel() > 1 && !saved.tp_replicated_buckets_apart()) {
    return {.restore = false,
            .note = absl::StrCat("gradient compression state of checkpoint ", dir,
                                 " belongs to the buckets of an earlier build, which mixed "
                                 "tp-split and tp-replicated parameters at tensor_parallel=",
                                 saved.layout().tensor_parallel(),
                                 ": dropped; error feedback restarts from zero residuals")};
  }
  return {.restore = true,
          .note = absl::StrCat("restored the gradient compression state of ",
                               DescribeSync(current.layout()), " from checkpoint ", dir)};
}

}  // namespace trident::training
