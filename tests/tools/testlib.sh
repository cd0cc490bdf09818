# Shared by the shell tests of //tools: sourced, not run.

# write_corpus FILE LINES SENTENCES: English-like text for a tiny corpus, with
# SENTENCES (1 or 2) sentences per line and a blank line (a document break)
# every fifth line.
write_corpus() {
  local file="$1" lines="$2" sentences="$3" i
  for i in $(seq 1 "$lines"); do
    echo "Line $i: the committee said on day $((i % 7)) that $((i * 13 % 97)) reports were received."
    if ((sentences > 1)); then
      echo "It was observed that the weather in town number $((i % 11)) had been unusually mild."
    fi
    if ((i % 5 == 0)); then echo; fi
  done > "$file"
}

# tiny_job DATA_DIR LAYERS: the model, layout, optimizer and data lines of a
# tiny job (hidden 32, 4 heads, 32 tokens, byte vocabulary) reading
# DATA_DIR/train.bin and DATA_DIR/val.bin; the caller adds steps and
# evaluation.
tiny_job() {
  cat <<CONFIG
model { vocab_size: 256 context_length: 32 num_layers: $2 num_heads: 4 hidden_size: 32 }
layout { micro_batch_size: 4 num_micro_batches: 1 }
optimizer { learning_rate: 3e-3 min_learning_rate: 3e-4 warmup_steps: 2 }
data { train_path: "$1/train.bin" val_path: "$1/val.bin" seq_length: 32 }
CONFIG
}
