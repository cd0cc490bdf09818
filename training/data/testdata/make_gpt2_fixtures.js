// Writes gpt2_bpe_fixtures.tsv: GPT-2 token ids of a few texts as computed by
// the npm package gpt-3-encoder 1.1.4 (OpenAI's encoder ported to JavaScript),
// the reference the C++ Gpt2BpeTokenizer is tested against. Run once, by hand:
//   (cd /tmp && npm pack gpt-3-encoder@1.1.4 && tar xzf gpt-3-encoder-1.1.4.tgz)
//   node make_gpt2_fixtures.js /tmp/package > gpt2_bpe_fixtures.tsv
// Each output line: the text as a JSON string, a tab, the ids separated by spaces.
const encoder = require(require('path').resolve(process.argv[2]));

const texts = [
  "Hello, world! This is GPT-2's tokenizer.",
  'The Fulton County Grand Jury said Friday an investigation of Atlanta\'s recent primary ' +
      'election produced " no evidence " that any irregularities took place.',
  "I'm sure they'll say we've done what you'd expect, isn't it? THEY'LL 'S 're",
  'Numbers: 3.14159, 1,000,000 and 2024-11-22; phone +1 (555) 010-9999.',
  '  leading spaces, double  spaces,   triple   and trailing   ',
  'tabs\tand\nnewlines\n\n\nparagraph\r\nwindows line',
  'Unicode: café naïve Straße, Ελληνικά, русский, 日本語のテキスト, 한국어, ' +
      'emoji 🎉👍🏽 and math ∑x² ≤ ½.',
  'Symbols!!! ??? ... --- *** @@@ ### $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} <<<>>> ||| ~~~ ``` \'\'\'',
  '<|endoftext|> is a special token in the vocabulary but plain text here.',
  'supercalifragilisticexpialidocious antidisestablishmentarianism ' +
      'pneumonoultramicroscopicsilicovolcanoconiosis',
  '\u00a0non-breaking\u00a0space and\u3000ideographic space',
  'x',
  'def f(x):\n    return x**2  # square\n',
  'Mixed123numbers456and789letters 1st 2nd 3rd ４５６ ⅓ ②',
];

for (const text of texts) {
  console.log(JSON.stringify(text) + '\t' + encoder.encode(text).join(' '));
}
