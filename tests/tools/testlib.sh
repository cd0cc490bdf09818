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
