#ifndef TRIDENT_TRAINING_DATA_LOADER_H_
#define TRIDENT_TRAINING_DATA_LOADER_H_

// Batches of token windows over a mapped token file.
//
// Training (TrainBatches). The global batch of step s is B rows of seq_len + 1
// tokens (inputs = row[0:seq_len], targets = row[1:seq_len+1]) and depends only
// on (seed, s, B, seq_len) and the file, never on the parallel layout (DESIGN
// rule 2): row r of step s is global sample g = s * B + r. Samples walk through
// the file epoch by epoch; epoch e = g / W covers W non-overlapping windows
//   window w: tokens [o_e + w * seq_len, o_e + w * seq_len + seq_len + 1)
// in a pseudo-random order: sample g takes window P_e(g mod W), where P_e is a
// bijection of [0, W) drawn from (seed, e) (a Feistel network with cycle
// walking: random access, no table, no state). The offset o_e, also drawn from
// (seed, e), shifts the window grid each epoch so later epochs do not repeat the
// same cuts. For a file of n tokens, W = floor((n-1)/seq_len) - 1 leaves room for
// any o_e in [0, seq_len); when only one window fits, W = 1 and o_e ranges over
// the n - 1 - seq_len spare tokens.
// Any rows of any step can be produced directly, without the rest of the batch:
// a dp rank takes rows SliceRows({0, B}, D, d), a micro-batch of it a further
// SliceRows(.., M, k).
//
// The data position a checkpoint needs is therefore just (seed, step)
// (DataPosition); resuming at step s with the same seed, B, seq_len and file
// continues the identical sequence. To notice a different file on resume, also
// store file().size() and file().payload_crc32c().
//
// Validation (ValidationWindows): a fixed sequence of K windows spread evenly
// over the whole file, so that validation sees every part of it (the documents
// of a prepared val.bin come from every genre of the corpus, in order). For a
// file of n tokens and windows of L + 1 tokens (L = seq_len), W = floor((n-1)/L)
// windows fit, K = min(max_windows, W), and with S = n - (L + 1) spare tokens
//   window k in [0, K): tokens [s_k, s_k + L + 1),  s_k = floor(k * S / (K - 1))
// (s_0 = 0 when K = 1): the first window starts the file, the last one ends it,
// and since K <= W the gap S / (K - 1) is at least L, so windows never overlap
// by more than the one token a window shares with its neighbour. The windows
// depend only on (n, L, K): the same across runs and parallel layouts.

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "training/data/token_file.h"

namespace trident::data {

// Rows [begin, begin + count) of a batch.
struct RowRange {
  int64_t begin = 0;
  int64_t count = 0;
  friend bool operator==(const RowRange&, const RowRange&) = default;
};

// Part `index` of `parts` equal parts of `rows`: the dp slice of a global batch,
// or the micro-batch of a dp slice. rows.count must divide evenly.
absl::StatusOr<RowRange> SliceRows(RowRange rows, int64_t parts, int64_t index);

// Everything that fixes where training is in the data, for checkpoints.
struct DataPosition {
  uint64_t seed = 0;
  int64_t step = 0;  // The next step to run.
  friend bool operator==(const DataPosition&, const DataPosition&) = default;
};

// Immutable after Create: every method is const and may be called from
// several threads (ranks) at once.
class TrainBatches {
 public:
  static absl::StatusOr<TrainBatches> Create(TokenFile file, int64_t global_batch_size,
                                             int64_t seq_len, uint64_t seed);

  int64_t global_batch_size() const { return global_batch_size_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t row_length() const { return seq_len_ + 1; }
  uint64_t seed() const { return seed_; }
  int64_t windows_per_epoch() const { return windows_per_epoch_; }
  const TokenFile& file() const { return file_; }

  DataPosition Position(int64_t step) const { return DataPosition{seed_, step}; }

  // Writes rows rows.begin .. of step `step`'s global batch into `out`,
  // row-major [rows.count, seq_len + 1]. Errors: a negative step, rows outside
  // [0, global_batch_size), `out` of the wrong size.
  absl::Status FillRows(int64_t step, RowRange rows, absl::Span<int32_t> out) const;
  absl::StatusOr<std::vector<int32_t>> Rows(int64_t step, RowRange rows) const;

  // Where row `row` of step `step` starts in the file (a token index), and the
  // epoch it belongs to.
  int64_t WindowStart(int64_t step, int64_t row) const;
  int64_t Epoch(int64_t step, int64_t row) const;

 private:
  TrainBatches(TokenFile file, int64_t global_batch_size, int64_t seq_len, uint64_t seed,
               int64_t windows_per_epoch, int64_t offset_range)
      : file_(std::move(file)),
        global_batch_size_(global_batch_size),
        seq_len_(seq_len),
        seed_(seed),
        windows_per_epoch_(windows_per_epoch),
        offset_range_(offset_range) {}

  TokenFile file_;
  int64_t global_batch_size_;
  int64_t seq_len_;
  uint64_t seed_;
  int64_t windows_per_epoch_;
  int64_t offset_range_;  // o_e is drawn from [0, offset_range_).
};

class ValidationWindows {
 public:
  // Up to `max_windows` windows (0: all that fit).
  static absl::StatusOr<ValidationWindows> Create(TokenFile file, int64_t seq_len,
                                                  int64_t max_windows);
  // W above: how many windows of seq_len + 1 tokens a file of num_tokens holds.
  static int64_t WindowsThatFit(int64_t num_tokens, int64_t seq_len);

  int64_t num_windows() const { return num_windows_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t row_length() const { return seq_len_ + 1; }
  const TokenFile& file() const { return file_; }

  // Windows [windows.begin, windows.begin + windows.count), row-major
  // [windows.count, seq_len + 1]. Validation batch j of B rows is
  // RowRange{j * B, B}; a dp rank slices it like a training batch.
  absl::Status FillWindows(RowRange windows, absl::Span<int32_t> out) const;

  // s_k above: where window k starts in the file (a token index).
  int64_t WindowStart(int64_t k) const;

 private:
  ValidationWindows(TokenFile file, int64_t seq_len, int64_t num_windows)
      : file_(std::move(file)), seq_len_(seq_len), num_windows_(num_windows) {}

  TokenFile file_;
  int64_t seq_len_;
  int64_t num_windows_;
};

}  // namespace trident::data

#endif  // TRIDENT_TRAINING_DATA_LOADER_H_
