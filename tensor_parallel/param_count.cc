#include "tensor_parallel/param_count.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace trident::tp {
namespace {

absl::Status CheckPositive(absl::string_view field, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(field, "=", value, " must be > 0"));
}

absl::Status CheckDivides(int tp, absl::string_view field, int64_t value) {
  if (value % tp == 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("tensor_parallel=", tp, " must divide ", field, "=", value));
}

absl::Status Validate(const StageShape& s, int tp) {
  if (tp < 1) {
    return absl::InvalidArgumentError(absl::StrCat("tensor_parallel=", tp, " must be >= 1"));
  }
  for (const auto& [field, value] :
       {std::pair<absl::string_view, int64_t>{"vocab_size", s.vocab_size},
        {"padded_vocab", s.padded_vocab},
        {"positions", s.positions},
        {"hidden", s.hidden},
        {"ffn_hidden", s.ffn_hidden},
        {"num_heads", s.num_heads}}) {
    if (absl::Status st = CheckPositive(field, value); !st.ok()) return st;
  }
  if (s.num_layers < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_layers=", s.num_layers, " must be >= 0"));
  }
  if (s.padded_vocab < s.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("padded_vocab=", s.padded_vocab,
                                                   " must be >= vocab_size=", s.vocab_size));
  }
  if (s.hidden % s.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_heads=", s.num_heads,
                                                   " must divide hidden=", s.hidden));
  }
  // Whole heads per rank (hence hidden % tp == 0), MLP columns, vocabulary rows.
  if (absl::Status st = CheckDivides(tp, "num_heads", s.num_heads); !st.ok()) return st;
  if (absl::Status st = CheckDivides(tp, "ffn_hidden", s.ffn_hidden); !st.ok()) return st;
  return CheckDivides(tp, "padded_vocab", s.padded_vocab);
}

}  // namespace

absl::StatusOr<ParameterCount> StageParameterCountPerRank(const StageShape& s, int tp) {
  if (absl::Status st = Validate(s, tp); !st.ok()) return st;
  const int64_t h = s.hidden, f = s.ffn_hidden;
  const int64_t wte_shard = s.padded_vocab / tp * h;
  ParameterCount count;
  if (s.has_embedding) {
    count.sharded += wte_shard;
    count.replicated += s.positions * h;  // wpe
  }
  // One block: column-parallel c_attn and c_fc (weight and bias split),
  // row-parallel projections (weight split, bias replicated), two LayerNorms.
  const int64_t block_sharded = (h * 3 * h + 3 * h) / tp   // attn.c_attn
                                + h * h / tp               // attn.c_proj.weight
                                + (h * f + f) / tp         // mlp.c_fc
                                + f * h / tp;              // mlp.c_proj.weight
  const int64_t block_replicated = 2 * h + 2 * h  // ln_1, ln_2
                                   + h + h;       // attn.c_proj.bias, mlp.c_proj.bias
  count.sharded += s.num_layers * block_sharded;
  count.replicated += s.num_layers * block_replicated;
  if (s.has_head) {
    count.replicated += 2 * h;                       // ln_f
    if (!s.has_embedding) count.sharded += wte_shard;  // The head's tied copy.
  }
  return count;
}

}  // namespace trident::tp
