#include "training/reshard.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/dtype.h"
#include "core/io/crc32c.h"
#include "core/io/file_util.h"
#include "core/status_macros.h"
#include "training/checkpoint/checkpoint.h"
#include "training/checkpoint/global_window.h"
#include "training/checkpoint/tensor_file.h"

namespace trident::training {

using checkpoint::CheckpointMeta;
using checkpoint::FlatRun;
using checkpoint::GlobalRuns;
using checkpoint::ParameterManifest;
using checkpoint::ShardSpec;
using checkpoint::TensorBlob;
using checkpoint::TensorWindow;

namespace {

constexpr char kStepTensor[] = "optimizer/step";
constexpr const char* kKinds[] = {"param/", "adam_m/", "adam_v/"};

// "adam_m/h.0.mlp.c_fc.weight@128" -> kind 1, name, offset 128, windowed.
struct BlobName {
  int kind = -1;
  std::string param;
  int64_t offset = 0;
};

absl::StatusOr<BlobName> ParseBlobName(const std::string& name) {
  for (int k = 0; k < 3; ++k) {
    if (!absl::StartsWith(name, kKinds[k])) continue;
    BlobName parsed;
    parsed.kind = k;
    parsed.param = name.substr(std::string(kKinds[k]).size());
    const size_t at = parsed.param.rfind('@');
    if (at != std::string::npos) {
      if (!absl::SimpleAtoi(parsed.param.substr(at + 1), &parsed.offset) || parsed.offset < 0) {
        return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has a bad offset"));
      }
      parsed.param.resize(at);
    }
    return parsed;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("tensor '", name, "' is neither a parameter nor an AdamW moment"));
}

ShardSpec SpecOf(const Parameter& p) {
  ShardSpec spec;
  const Shape& global = p.layout.global_shape.empty() ? p.value.shape() : p.layout.global_shape;
  spec.global_shape.assign(global.begin(), global.end());
  spec.split_dim = p.layout.split_dim;
  spec.num_shards = p.layout.num_shards;
  spec.shard_index = p.layout.shard_index;
  spec.blocks = p.layout.blocks;
  return spec.Canonical();
}

ShardSpec SpecOf(const TensorWindow& w, const ParameterManifest& p) {
  ShardSpec spec;
  spec.global_shape.assign(p.global_shape().begin(), p.global_shape().end());
  spec.split_dim = w.split_dim();
  spec.num_shards = w.num_shards();
  spec.shard_index = w.shard_index();
  spec.blocks = w.blocks();
  return spec;
}

google::protobuf::RepeatedPtrField<TensorWindow>* WindowsOf(ParameterManifest& p, int kind) {
  return kind == 0 ? p.mutable_param() : kind == 1 ? p.mutable_adam_m() : p.mutable_adam_v();
}
const google::protobuf::RepeatedPtrField<TensorWindow>& WindowsOf(const ParameterManifest& p,
                                                                  int kind) {
  return kind == 0 ? p.param() : kind == 1 ? p.adam_m() : p.adam_v();
}
const char* KindField(int kind) { return kind == 0 ? "param" : kind == 1 ? "adam_m" : "adam_v"; }

int64_t Product(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

}  // namespace

absl::StatusOr<std::vector<ParameterManifest>> LocalManifest(
    const ParameterList& params, absl::Span<const TensorBlob> blobs,
    const std::string& file_name) {
  absl::flat_hash_map<std::string, const Parameter*> by_name;
  std::vector<ParameterManifest> manifest;
  absl::flat_hash_map<std::string, size_t> index;
  // The stored tensors' dtype: the optimizer writes every tensor of a rank in
  // one dtype (fp32; with mixed precision the masters, not the 16-bit
  // values), also for parameters this rank holds no window of under ZeRO.
  std::optional<DType> stored;
  for (const TensorBlob& blob : blobs) {
    if (blob.name != kStepTensor) {
      stored = blob.dtype;
      break;
    }
  }
  for (const Parameter* p : params) {
    by_name[p->name] = p;
    index[p->name] = manifest.size();
    ParameterManifest& entry = manifest.emplace_back();
    entry.set_name(p->name);
    const ShardSpec spec = SpecOf(*p);
    for (const int64_t d : spec.global_shape) entry.add_global_shape(d);
    entry.set_dtype(std::string(DTypeName(stored.value_or(p->value.dtype()))));
  }
  for (const TensorBlob& blob : blobs) {
    if (blob.name == kStepTensor) continue;
    ASSIGN_OR_RETURN(const BlobName name, ParseBlobName(blob.name));
    const auto found = by_name.find(name.param);
    if (found == by_name.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", blob.name, "' belongs to no parameter of this rank"));
    }
    const ShardSpec spec = SpecOf(*found->second);
    TensorWindow* w = WindowsOf(manifest[index[name.param]], name.kind)->Add();
    w->set_file(file_name);
    w->set_tensor(blob.name);
    if (!spec.replicated()) {
      w->set_split_dim(spec.split_dim);
      w->set_num_shards(spec.num_shards);
      w->set_shard_index(spec.shard_index);
      w->set_blocks(spec.blocks);
    }
    w->set_offset(name.offset);
    w->set_length(Product(blob.shape));
    w->set_size(blob.bytes.size());
    w->set_crc32c(io::Crc32c(blob.bytes));
  }
  return manifest;
}

absl::Status MergeManifests(const std::vector<std::vector<ParameterManifest>>& ranks,
                            CheckpointMeta* meta) {
  meta->clear_parameters();
  absl::flat_hash_map<std::string, int> index;
  // Placement key per parameter and kind: spec + range.
  std::vector<std::array<absl::flat_hash_set<std::string>, 3>> seen;
  for (const std::vector<ParameterManifest>& rank : ranks) {
    for (const ParameterManifest& p : rank) {
      auto [it, inserted] = index.try_emplace(p.name(), meta->parameters_size());
      if (inserted) {
        ParameterManifest* entry = meta->add_parameters();
        entry->set_name(p.name());
        *entry->mutable_global_shape() = p.global_shape();
        entry->set_dtype(p.dtype());
        seen.emplace_back();
      }
      ParameterManifest& entry = *meta->mutable_parameters(it->second);
      if (!std::equal(entry.global_shape().begin(), entry.global_shape().end(),
                      p.global_shape().begin(), p.global_shape().end()) ||
          entry.dtype() != p.dtype()) {
        return absl::InternalError(absl::StrCat("parameter '", p.name(),
                                                "' has different global shapes or dtypes on "
                                                "different ranks"));
      }
      for (int kind = 0; kind < 3; ++kind) {
        for (const TensorWindow& w : WindowsOf(p, kind)) {
          const std::string key = absl::StrCat(w.split_dim(), ",", w.num_shards(), ",",
                                               w.shard_index(), ",", w.blocks(), ",", w.offset(),
                                               ",", w.length());
          if (!seen[it->second][kind].insert(key).second) continue;
          *WindowsOf(entry, kind)->Add() = w;
        }
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<checkpoint::TensorSet> ReadWindows(const std::string& dir,
                                                 const CheckpointMeta& meta,
                                                 const ParameterList& params,
                                                 absl::Span<const TensorBlob> wanted,
                                                 int64_t vocab_size, int rank, int world_size) {
  const std::string meta_path = io::JoinPath(dir, "meta.textproto");
  const auto refuse = [&](absl::StatusCode code, const std::string& what) {
    return absl::Status(code, absl::StrCat("checkpoint '", dir, "': ", what));
  };
  absl::flat_hash_map<std::string, const Parameter*> by_name;
  for (const Parameter* p : params) by_name[p->name] = p;
  absl::flat_hash_map<std::string, int> manifest_index;
  for (int i = 0; i < meta.parameters_size(); ++i) {
    manifest_index[meta.parameters(i).name()] = i;
  }
  absl::flat_hash_map<std::string, int> file_index;
  for (int i = 0; i < meta.files_size(); ++i) file_index[meta.files(i).name()] = i;

  // Rank files, opened once each, checked against the meta's size and CRC.
  std::map<std::string, std::unique_ptr<checkpoint::TensorFileIndex>> files;
  const auto open_file = [&](const std::string& field, const std::string& name)
      -> absl::StatusOr<const checkpoint::TensorFileIndex*> {
    const auto known = file_index.find(name);
    if (known == file_index.end()) {
      return refuse(absl::StatusCode::kDataLoss,
                    absl::StrCat(meta_path, ": ", field, ".file names '", name,
                                 "', which is not among the files of the checkpoint"));
    }
    auto& slot = files[name];
    if (slot == nullptr) {
      ASSIGN_OR_RETURN(checkpoint::TensorFileIndex index,
                       checkpoint::TensorFileIndex::Open(io::JoinPath(dir, name)));
      const checkpoint::RankFile& recorded = meta.files(known->second);
      if (index.summary().file_size != recorded.size() ||
          index.summary().file_crc32c != recorded.crc32c()) {
        return refuse(absl::StatusCode::kDataLoss,
                      absl::StrCat("file '", name, "' has size ", index.summary().file_size,
                                   " and CRC-32C ", index.summary().file_crc32c,
                                   "; ", meta_path, " records files[", known->second, "].size ",
                                   recorded.size(), " and .crc32c ", recorded.crc32c()));
      }
      slot = std::make_unique<checkpoint::TensorFileIndex>(std::move(index));
    }
    return slot.get();
  };
  const auto open = [&](const std::string& field,
                        const TensorWindow& w) -> absl::StatusOr<const checkpoint::TensorFileIndex*> {
    ASSIGN_OR_RETURN(const checkpoint::TensorFileIndex* index, open_file(field, w.file()));
    const checkpoint::TensorFileIndex::Tensor* tensor = index->Find(w.tensor());
    if (tensor == nullptr) {
      return refuse(absl::StatusCode::kDataLoss,
                    absl::StrCat("file '", w.file(), "' has no tensor '", w.tensor(), "' (",
                                 meta_path, ": ", field, ".tensor)"));
    }
    if (tensor->size != w.size() || tensor->crc32c != w.crc32c()) {
      return refuse(absl::StatusCode::kDataLoss,
                    absl::StrCat("file '", w.file(), "' tensor '", w.tensor(), "' has ",
                                 tensor->size, " bytes, CRC-32C ", tensor->crc32c, "; ",
                                 meta_path, " records ", field, ".size ", w.size(), " and ",
                                 field, ".crc32c ", w.crc32c()));
    }
    return index;
  };
  // This rank's share of the whole-file checks.
  for (int i = rank; i < meta.files_size(); i += world_size) {
    ASSIGN_OR_RETURN(const checkpoint::TensorFileIndex* index,
                     open_file(absl::StrCat("files[", i, "]"), meta.files(i).name()));
    RETURN_IF_ERROR(index->VerifyFile());  // names the file
  }

  std::vector<checkpoint::LoadedTensor> out;
  for (const TensorBlob& blob : wanted) {
    checkpoint::LoadedTensor& t = out.emplace_back();
    t.name = blob.name;
    t.dtype = blob.dtype;
    t.shape = blob.shape;
    if (blob.name == kStepTensor) {
      if (!meta.has_optimizer_step()) {
        return refuse(absl::StatusCode::kDataLoss,
                      absl::StrCat(meta_path, ": optimizer_step is missing"));
      }
      const int64_t step = meta.optimizer_step();
      t.bytes.resize(sizeof(step));
      std::memcpy(t.bytes.data(), &step, sizeof(step));
      continue;
    }
    ASSIGN_OR_RETURN(const BlobName name, ParseBlobName(blob.name));
    const auto param = by_name.find(name.param);
    if (param == by_name.end()) {
      return absl::InternalError(absl::StrCat("tensor '", blob.name, "' has no parameter"));
    }
    const auto found = manifest_index.find(name.param);
    if (found == manifest_index.end()) {
      return refuse(absl::StatusCode::kDataLoss,
                    absl::StrCat(meta_path, ": parameters has no entry for '", name.param,
                                 "' (missing window)"));
    }
    const ParameterManifest& manifest = meta.parameters(found->second);
    const std::string field = absl::StrCat("parameters[", found->second, "] ('", name.param, "')");
    if (manifest.dtype() != DTypeName(blob.dtype)) {
      return refuse(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat(meta_path, ": ", field, ".dtype is ", manifest.dtype(),
                                 ", this job has ", DTypeName(blob.dtype)));
    }
    const ShardSpec target = SpecOf(*param->second);
    const std::vector<int64_t> saved_shape(manifest.global_shape().begin(),
                                           manifest.global_shape().end());
    if (saved_shape != target.global_shape) {
      // Only the vocabulary's padding may differ (it depends on tp): dim 0 of
      // an embedding, both at least the real vocabulary.
      const bool padding_only = saved_shape.size() == target.global_shape.size() &&
                                !saved_shape.empty() &&
                                std::equal(saved_shape.begin() + 1, saved_shape.end(),
                                           target.global_shape.begin() + 1) &&
                                saved_shape[0] >= vocab_size &&
                                target.global_shape[0] >= vocab_size;
      if (!padding_only) {
        return refuse(absl::StatusCode::kFailedPrecondition,
                      absl::StrCat(meta_path, ": ", field, ".global_shape is [",
                                   absl::StrJoin(saved_shape, ", "), "], this job has [",
                                   absl::StrJoin(target.global_shape, ", "), "]"));
      }
    }
    const int64_t saved_elements = Product(saved_shape);
    const int64_t length = Product(blob.shape);
    const size_t element = DTypeSize(blob.dtype);
    t.bytes.assign(static_cast<size_t>(length) * element, std::byte{0});
    ASSIGN_OR_RETURN(const std::vector<FlatRun> target_runs, GlobalRuns(target, name.offset, length));
    std::vector<char> covered(length, 0);
    int64_t remaining = length;
    const auto& windows = WindowsOf(manifest, name.kind);
    for (int wi = 0; wi < windows.size() && remaining > 0; ++wi) {
      const TensorWindow& w = windows[wi];
      const std::string wfield = absl::StrCat(field, ".", KindField(name.kind), "[", wi, "]");
      const absl::StatusOr<std::vector<FlatRun>> source_runs =
          GlobalRuns(SpecOf(w, manifest), w.offset(), w.length());
      if (!source_runs.ok() || w.size() != static_cast<uint64_t>(w.length()) * element) {
        return refuse(absl::StatusCode::kDataLoss,
                      absl::StrCat(meta_path, ": ", wfield, " is inconsistent: ",
                                   source_runs.ok() ? "size does not match length"
                                                    : source_runs.status().message()));
      }
      // Both run lists ascend globally: intersect them.
      const checkpoint::TensorFileIndex* file = nullptr;
      size_t a = 0, b = 0;
      while (a < target_runs.size() && b < source_runs->size()) {
        const FlatRun& tr = target_runs[a];
        const FlatRun& sr = (*source_runs)[b];
        const int64_t begin = std::max(tr.global, sr.global);
        const int64_t end = std::min(tr.global + tr.length, sr.global + sr.length);
        if (begin < end) {
          int64_t g = begin;
          while (g < end) {
            const int64_t t_pos = tr.local + (g - tr.global) - name.offset;
            if (covered[t_pos]) {
              ++g;
              continue;
            }
            int64_t stop = g;
            while (stop < end && !covered[tr.local + (stop - tr.global) - name.offset]) ++stop;
            if (file == nullptr) {
              ASSIGN_OR_RETURN(file, open(wfield, w));
            }
            const int64_t s_pos = sr.local + (g - sr.global) - w.offset();
            RETURN_IF_ERROR(file->ReadRange(
                w.tensor(), static_cast<uint64_t>(s_pos) * element,
                absl::MakeSpan(t.bytes.data() + t_pos * element, (stop - g) * element)));
            std::fill(covered.begin() + t_pos, covered.begin() + t_pos + (stop - g), 1);
            remaining -= stop - g;
            g = stop;
          }
        }
        if (tr.global + tr.length <= sr.global + sr.length) {
          ++a;
        } else {
          ++b;
        }
      }
    }
    if (remaining > 0) {
      // What is left must be vocabulary padding beyond the saved tensor.
      for (const FlatRun& tr : target_runs) {
        for (int64_t i = 0; i < tr.length; ++i) {
          if (covered[tr.local - name.offset + i]) continue;
          if (tr.global + i < saved_elements) {
            return refuse(absl::StatusCode::kDataLoss,
                          absl::StrCat(meta_path, ": ", field, ".", KindField(name.kind),
                                       ": no window holds global element ", tr.global + i,
                                       " of '", name.param, "' (missing window; ", remaining,
                                       " elements of this rank's '", blob.name,
                                       "' are not covered)"));
          }
        }
      }
    }
  }
  return checkpoint::TensorSet::Create(absl::StrCat("checkpoint '", dir, "' (resharded)"),
                                       std::move(out));
}

absl::StatusOr<std::vector<checkpoint::LoadedTensor>> ReadSerialParameters(
    const std::string& dir, const CheckpointMeta& meta) {
  if (meta.format_version() < 3 || meta.parameters_size() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint '", dir, "' has format_version ", meta.format_version(),
        " and no manifest (parameters); only version 3 checkpoints can be converted"));
  }
  const int64_t vocab_size = meta.model().vocab_size();
  std::vector<Parameter> storage(meta.parameters_size());
  ParameterList params;
  std::vector<TensorBlob> wanted;
  for (int i = 0; i < meta.parameters_size(); ++i) {
    const ParameterManifest& m = meta.parameters(i);
    storage[i].name = m.name();
    storage[i].layout.global_shape.assign(m.global_shape().begin(), m.global_shape().end());
    params.push_back(&storage[i]);
    absl::StatusOr<DType> dtype = ParseDType(m.dtype());
    if (!dtype.ok() || m.global_shape_size() == 0) {
      return absl::DataLossError(absl::StrCat("checkpoint '", dir, "': meta.textproto: parameters[",
                                              i, "] ('", m.name(), "') has dtype '", m.dtype(),
                                              "' and ", m.global_shape_size(), " dims"));
    }
    wanted.push_back(TensorBlob{absl::StrCat(kKinds[0], m.name()), *dtype,
                                {m.global_shape().begin(), m.global_shape().end()}, {}});
  }
  ASSIGN_OR_RETURN(const checkpoint::TensorSet set,
                   ReadWindows(dir, meta, params, wanted, vocab_size, 0, 1));
  std::vector<checkpoint::LoadedTensor> out;
  for (const checkpoint::LoadedTensor& t : set.tensors()) {
    checkpoint::LoadedTensor& serial = out.emplace_back(t);
    serial.name = t.name.substr(std::string(kKinds[0]).size());
    if (serial.name == "wte.weight" && serial.shape[0] > vocab_size) {
      serial.bytes.resize(serial.bytes.size() / serial.shape[0] * vocab_size);  // a prefix of rows
      serial.shape[0] = vocab_size;
    }
  }
  return out;
}

absl::Status WriteFreshSerialCheckpoint(const std::string& dir, CheckpointMeta meta,
                                        absl::Span<const checkpoint::LoadedTensor> tensors) {
  meta.set_world_size(1);
  meta.set_optimizer_step(0);
  meta.clear_parameters();
  const std::string file = "rank_00000.tensors";
  std::vector<std::vector<std::byte>> zeros;
  zeros.reserve(tensors.size());
  std::vector<TensorBlob> blobs;
  for (const checkpoint::LoadedTensor& t : tensors) {
    zeros.emplace_back(t.bytes.size(), std::byte{0});
    ParameterManifest* p = meta.add_parameters();
    p->set_name(t.name);
    for (const int64_t d : t.shape) p->add_global_shape(d);
    p->set_dtype(std::string(DTypeName(t.dtype)));
    for (int kind = 0; kind < 3; ++kind) {
      const absl::Span<const std::byte> bytes =
          kind == 0 ? absl::MakeConstSpan(t.bytes) : absl::MakeConstSpan(zeros.back());
      blobs.push_back(TensorBlob{absl::StrCat(kKinds[kind], t.name), t.dtype, t.shape, bytes});
      TensorWindow* w = WindowsOf(*p, kind)->Add();
      w->set_file(file);
      w->set_tensor(blobs.back().name);
      w->set_offset(0);
      w->set_length(Product(t.shape));
      w->set_size(bytes.size());
      w->set_crc32c(io::Crc32c(bytes));
    }
  }
  const int64_t step = 0;
  blobs.push_back(TensorBlob{kStepTensor, DType::kInt64, {},
                             absl::MakeConstSpan(reinterpret_cast<const std::byte*>(&step),
                                                 sizeof(step))});
  return checkpoint::SaveCheckpoint(dir, meta, blobs);
}

absl::StatusOr<bool> ResumeFromOwnRankFiles(const std::string& dir,
                                            const CheckpointMeta& saved,
                                            const CheckpointMeta& current) {
  const topology::ParallelLayout& layout = saved.layout();
  // Local SGD and gossip replicas step apart; a ps checkpoint is written after
  // the servers hand every worker the same values and moments, like sync's.
  const bool replicas_differ = (layout.dp_sync() == topology::DpSync::LOCAL_SGD ||
                                layout.dp_sync() == topology::DpSync::GOSSIP) &&
                               layout.data_parallel() > 1;
  if (!replicas_differ && !saved.holds_compression_state()) return false;
  const absl::Status same_job = checkpoint::CheckResumeCompatible(dir, saved, current);
  if (same_job.ok()) return true;
  if (!replicas_differ) return false;
  return absl::FailedPreconditionError(absl::StrCat(
      same_job.message(), " (a dp_sync=", topology::DpSync::Mode_Name(layout.dp_sync()),
      " checkpoint: its ", layout.data_parallel(),
      " replicas hold different parameters and AdamW moments, which only its own layout and "
      "world size keep apart; it is not averaged or resharded)"));
}

std::string DescribeLayout(const CheckpointMeta& meta) {
  const topology::ParallelLayout& l = meta.layout();
  std::string text = absl::StrCat("tp=", l.tensor_parallel(), " pp=", l.pipeline_parallel(),
                                  " dp=", l.data_parallel(), " zero=", l.zero_stage());
  if (l.virtual_pipeline_stages() > 1) absl::StrAppend(&text, " vpp=", l.virtual_pipeline_stages());
  if (l.layers_per_stage_size() > 0) {
    absl::StrAppend(&text, " layers_per_stage=", absl::StrJoin(l.layers_per_stage(), ","));
  }
  return text;
}

}  // namespace trident::training
