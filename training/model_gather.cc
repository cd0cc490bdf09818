#include "training/model_gather.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/ops/elementwise.h"
#include "core/status_macros.h"
#include "core/tensor_comm.h"

namespace trident::training {
namespace {

constexpr int kTag = 7;
constexpr int kMaxDims = 6;

// Per tensor on the wire: a fixed header, the name packed into int64 words,
// then the fp32 data.
struct WireHeader {
  int64_t model_chunk = 0;
  int64_t name_length = 0;
  int64_t ndim = 0;
  int64_t dims[kMaxDims] = {};
};

struct ChunkTensor {
  int model_chunk = 0;
  NamedTensor tensor;
};

absl::Status SendTensors(comm::Communicator& pp, const std::vector<ChunkTensor>& tensors) {
  int64_t count = static_cast<int64_t>(tensors.size());
  RETURN_IF_ERROR(pp.Send(comm::ConstBuffer(&count, 1, DType::kInt64), 0, kTag));
  for (const ChunkTensor& t : tensors) {
    const Tensor& value = t.tensor.tensor;
    if (value.ndim() > kMaxDims || value.dtype() != DType::kFloat32) {
      return absl::InternalError(absl::StrCat("cannot send ", t.tensor.name, " ",
                                              value.DebugString()));
    }
    WireHeader header;
    header.model_chunk = t.model_chunk;
    header.name_length = static_cast<int64_t>(t.tensor.name.size());
    header.ndim = value.ndim();
    for (int d = 0; d < value.ndim(); ++d) header.dims[d] = value.dim(d);
    RETURN_IF_ERROR(pp.Send(comm::ConstBuffer(&header, sizeof(header) / sizeof(int64_t),
                                              DType::kInt64),
                            0, kTag));
    std::vector<int64_t> name((t.tensor.name.size() + 7) / 8, 0);
    std::memcpy(name.data(), t.tensor.name.data(), t.tensor.name.size());
    RETURN_IF_ERROR(pp.Send(comm::ConstBuffer(name.data(), static_cast<int64_t>(name.size()),
                                              DType::kInt64),
                            0, kTag));
    RETURN_IF_ERROR(pp.Send(AsConstCommBuffer(value), 0, kTag));
  }
  return absl::OkStatus();
}

absl::Status ReceiveTensors(comm::Communicator& pp, int stage, std::vector<ChunkTensor>& out) {
  int64_t count = 0;
  RETURN_IF_ERROR(pp.Recv(comm::Buffer{&count, 1, DType::kInt64}, stage, kTag));
  for (int64_t i = 0; i < count; ++i) {
    WireHeader header;
    RETURN_IF_ERROR(pp.Recv(comm::Buffer{&header, sizeof(header) / sizeof(int64_t), DType::kInt64},
                            stage, kTag));
    if (header.ndim < 0 || header.ndim > kMaxDims || header.name_length < 0) {
      return absl::DataLossError(absl::StrCat("stage ", stage, " sent a malformed tensor header"));
    }
    std::vector<int64_t> name((header.name_length + 7) / 8, 0);
    RETURN_IF_ERROR(pp.Recv(comm::Buffer{name.data(), static_cast<int64_t>(name.size()),
                                         DType::kInt64},
                            stage, kTag));
    ChunkTensor t;
    t.model_chunk = static_cast<int>(header.model_chunk);
    t.tensor.name.assign(reinterpret_cast<const char*>(name.data()), header.name_length);
    t.tensor.tensor = Tensor::Empty(absl::MakeConstSpan(header.dims, header.ndim), DType::kFloat32);
    RETURN_IF_ERROR(pp.Recv(AsCommBuffer(t.tensor.tensor), stage, kTag));
    out.push_back(std::move(t));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<NamedTensor>> GatherModelTensors(const ExecContext& ctx,
                                                            StageModel& model,
                                                            const tp::TpGroup& tp,
                                                            comm::Communicator* pp,
                                                            int64_t vocab_size, bool gradients) {
  const Parameter* head_copy = model.head_embedding_copy();
  std::vector<ChunkTensor> mine;
  for (int chunk = 0; chunk < model.num_chunks(); ++chunk) {
    ParameterList params;
    for (Parameter* p : model.chunk_parameters(chunk)) {
      if (p != head_copy) params.push_back(p);
    }
    ASSIGN_OR_RETURN(std::vector<NamedTensor> tensors,
                     GatherSerialTensors(ctx, params, tp, vocab_size, gradients));
    for (NamedTensor& t : tensors) {
      // Mixed precision: 16-bit values widen exactly to the fp32 the serial
      // tensors are compared and exported in.
      if (t.tensor.dtype() != DType::kFloat32) {
        Tensor widened = Tensor::Empty(t.tensor.shape(), DType::kFloat32, ctx.allocator());
        ops::Copy(ctx, t.tensor, widened);
        t.tensor = widened;
      }
      // A GPU rank's tensors come to the host (NamedTensor's contract: what
      // is exported, compared or sent to stage 0 is host memory).
      if (!t.tensor.device().is_cpu()) {
        t.tensor = Tensor::FromVector(t.tensor.ToVector<float>(), t.tensor.shape());
      }
      mine.push_back({model.model_chunk(chunk), std::move(t)});
    }
  }
  if (tp.rank() != 0) return std::vector<NamedTensor>();
  const int stage = pp == nullptr ? 0 : pp->rank();
  if (stage != 0) {
    RETURN_IF_ERROR(SendTensors(*pp, mine));
    return std::vector<NamedTensor>();
  }
  for (int s = 1; pp != nullptr && s < pp->size(); ++s) {
    RETURN_IF_ERROR(ReceiveTensors(*pp, s, mine));
  }
  // Model order: chunk by chunk, each chunk's parameters in its own order.
  std::stable_sort(mine.begin(), mine.end(), [](const ChunkTensor& a, const ChunkTensor& b) {
    return a.model_chunk < b.model_chunk;
  });
  std::vector<NamedTensor> out;
  out.reserve(mine.size());
  for (ChunkTensor& t : mine) out.push_back(std::move(t.tensor));
  return out;
}

}  // namespace trident::training
