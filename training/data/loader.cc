#include "training/data/loader.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/status_macros.h"

namespace trident::data {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A hash of two words, for deriving keys from (seed, epoch, purpose).
uint64_t Combine(uint64_t a, uint64_t b) { return SplitMix64(a ^ SplitMix64(b)); }

constexpr uint64_t kPermutationPurpose = 1;
constexpr uint64_t kOffsetPurpose = 2;
constexpr int kFeistelRounds = 6;

// A bijection of [0, size) chosen by `key`: a balanced Feistel network over the
// smallest even number of bits covering size, applied again while the result
// lands outside [0, size) (cycle walking; on average under 4 applications).
int64_t PermuteIndex(uint64_t key, int64_t index, int64_t size) {
  if (size <= 1) return 0;
  const int bits = std::bit_width(static_cast<uint64_t>(size - 1));
  const int half = (bits + 1) / 2;
  const uint64_t mask = (uint64_t{1} << half) - 1;
  uint64_t round_keys[kFeistelRounds];
  for (int round = 0; round < kFeistelRounds; ++round) round_keys[round] = Combine(key, round);
  uint64_t x = static_cast<uint64_t>(index);
  do {
    uint64_t left = x >> half;
    uint64_t right = x & mask;
    for (int round = 0; round < kFeistelRounds; ++round) {
      const uint64_t mixed = left ^ (SplitMix64(round_keys[round] ^ right) & mask);
      left = right;
      right = mixed;
    }
    x = (left << half) | right;
  } while (x >= static_cast<uint64_t>(size));
  return static_cast<int64_t>(x);
}

absl::Status CheckOutSize(absl::Span<int32_t> out, int64_t rows, int64_t row_length) {
  if (static_cast<int64_t>(out.size()) != rows * row_length) {
    return absl::InvalidArgumentError(absl::StrCat("output buffer holds ", out.size(), " tokens; ",
                                                   rows, " rows of ", row_length, " need ",
                                                   rows * row_length));
  }
  return absl::OkStatus();
}

absl::Status CheckSeqLen(const TokenFile& file, int64_t seq_len) {
  if (seq_len < 1) {
    return absl::InvalidArgumentError(absl::StrCat("seq_len ", seq_len, " must be at least 1"));
  }
  if (file.size() < seq_len + 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "token file ", file.path(), " has ", file.size(), " tokens; a window of seq_len ", seq_len,
        " needs ", seq_len + 1, " (inputs plus the shifted targets)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RowRange> SliceRows(RowRange rows, int64_t parts, int64_t index) {
  if (rows.begin < 0 || rows.count < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("row range [", rows.begin, ", +", rows.count, ") is negative"));
  }
  if (parts < 1) {
    return absl::InvalidArgumentError(absl::StrCat("cannot split rows into ", parts, " parts"));
  }
  if (index < 0 || index >= parts) {
    return absl::InvalidArgumentError(absl::StrCat("part ", index, " is outside [0, ", parts, ")"));
  }
  if (rows.count % parts != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a batch of ", rows.count, " rows does not split into ", parts, " equal parts"));
  }
  const int64_t part_rows = rows.count / parts;
  return RowRange{rows.begin + index * part_rows, part_rows};
}

absl::StatusOr<TrainBatches> TrainBatches::Create(TokenFile file, int64_t global_batch_size,
                                                  int64_t seq_len, uint64_t seed) {
  if (global_batch_size < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("global_batch_size ", global_batch_size, " must be at least 1"));
  }
  RETURN_IF_ERROR(CheckSeqLen(file, seq_len));
  // Windows that fit with no offset; keep one window's worth of room for the
  // per-epoch offset when there are two or more.
  const int64_t fitting = (file.size() - 1) / seq_len;
  const int64_t windows = fitting >= 2 ? fitting - 1 : 1;
  const int64_t slack = (file.size() - 1) - windows * seq_len;
  const int64_t offset_range = std::min(seq_len, slack + 1);
  return TrainBatches(std::move(file), global_batch_size, seq_len, seed, windows, offset_range);
}

int64_t TrainBatches::Epoch(int64_t step, int64_t row) const {
  return (step * global_batch_size_ + row) / windows_per_epoch_;
}

int64_t TrainBatches::WindowStart(int64_t step, int64_t row) const {
  const int64_t sample = step * global_batch_size_ + row;
  const int64_t epoch = sample / windows_per_epoch_;
  const uint64_t epoch_key = Combine(seed_, static_cast<uint64_t>(epoch));
  const int64_t offset = static_cast<int64_t>(Combine(epoch_key, kOffsetPurpose) %
                                              static_cast<uint64_t>(offset_range_));
  const int64_t window = PermuteIndex(Combine(epoch_key, kPermutationPurpose),
                                      sample % windows_per_epoch_, windows_per_epoch_);
  return offset + window * seq_len_;
}

absl::Status TrainBatches::FillRows(int64_t step, RowRange rows, absl::Span<int32_t> out) const {
  if (step < 0) return absl::InvalidArgumentError(absl::StrCat("step ", step, " is negative"));
  if (rows.begin < 0 || rows.count < 0 || rows.begin + rows.count > global_batch_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("rows [", rows.begin, ", ", rows.begin + rows.count,
                     ") are outside the global batch [0, ", global_batch_size_, ")"));
  }
  RETURN_IF_ERROR(CheckOutSize(out, rows.count, row_length()));
  for (int64_t i = 0; i < rows.count; ++i) {
    RETURN_IF_ERROR(file_.CopyTokens(WindowStart(step, rows.begin + i),
                                     out.subspan(i * row_length(), row_length())));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> TrainBatches::Rows(int64_t step, RowRange rows) const {
  std::vector<int32_t> out(static_cast<size_t>(std::max<int64_t>(rows.count, 0) * row_length()));
  RETURN_IF_ERROR(FillRows(step, rows, absl::MakeSpan(out)));
  return out;
}

absl::StatusOr<ValidationWindows> ValidationWindows::Create(TokenFile file, int64_t seq_len,
                                                            int64_t max_windows) {
  if (max_windows < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_windows ", max_windows, " must be 0 (all) or positive"));
  }
  RETURN_IF_ERROR(CheckSeqLen(file, seq_len));
  int64_t windows = WindowsThatFit(file.size(), seq_len);
  if (max_windows > 0) windows = std::min(windows, max_windows);
  return ValidationWindows(std::move(file), seq_len, windows);
}

int64_t ValidationWindows::WindowsThatFit(int64_t num_tokens, int64_t seq_len) {
  return num_tokens > seq_len ? (num_tokens - 1) / seq_len : 0;
}

int64_t ValidationWindows::WindowStart(int64_t k) const {
  if (num_windows_ <= 1) return 0;
  // floor(k * S / (K - 1)) in 128 bits: k * S overflows 64 bits for huge files.
  const auto spare = static_cast<unsigned __int128>(file_.size() - row_length());
  return static_cast<int64_t>(spare * static_cast<uint64_t>(k) /
                              static_cast<uint64_t>(num_windows_ - 1));
}

absl::Status ValidationWindows::FillWindows(RowRange windows, absl::Span<int32_t> out) const {
  if (windows.begin < 0 || windows.count < 0 || windows.begin + windows.count > num_windows_) {
    return absl::InvalidArgumentError(
        absl::StrCat("validation windows [", windows.begin, ", ", windows.begin + windows.count,
                     ") are outside [0, ", num_windows_, ") of ", file_.path()));
  }
  RETURN_IF_ERROR(CheckOutSize(out, windows.count, row_length()));
  for (int64_t i = 0; i < windows.count; ++i) {
    RETURN_IF_ERROR(file_.CopyTokens(WindowStart(windows.begin + i),
                                     out.subspan(i * row_length(), row_length())));
  }
  return absl::OkStatus();
}

}  // namespace trident::data
