/**
 * One config reader (issue 20): every component's config.json is read through `ConfigFields`, so a wrong field is
 * worded the same way whichever file it is in: `<file>: '<key>' must be <expected>, got <value>`.
 */
import { expect } from 'chai';
import { ConfigFields, MAX_CONFIG_SIZE, isIntegerAtLeast } from '../lib/io/config-fields.js';
import { parseBlipConfig } from '../lib/models/blip/config.js';
import { parseBlipImageProcessorConfig } from '../lib/models/blip/processor.js';
import { parseClipTextConfig } from '../lib/models/clip-text/config.js';
import { parseUNetConfig } from '../lib/models/unet/config.js';
import { parseVaeConfig } from '../lib/models/vae/config.js';
import { parseDDIMConfig } from '../lib/schedulers/config.js';

describe('config fields: one reader, one wording', function () {
  it('takes the fallback for a missing or null field, and names the file, key, expectation and value otherwise', function () {
    const r = new ConfigFields({ a: 3, b: null, c: 'x', big: MAX_CONFIG_SIZE + 1, list: [1, MAX_CONFIG_SIZE + 1] }, 'cfg.json');
    expect(r.int('a', 1)).to.equal(3);
    expect(r.int('b', 7)).to.equal(7);
    expect(r.int('missing', 8)).to.equal(8);
    expect(r.optional('b', isIntegerAtLeast(0), 'an integer')).to.equal(undefined);
    expect(() => r.int('c', 1)).to.throw(/^cfg\.json: 'c' must be an integer >= 1, got "x"$/);
    expect(() => r.field('required', isIntegerAtLeast(0), 'a count')).to.throw(/^cfg\.json: 'required' is missing \(expected a count\)$/);
    expect(() => r.int('big', 1)).to.throw(/^cfg\.json: 'big' is 1048577, larger than any model this library runs/);
    expect(() => r.sized('list', (v): v is number[] => Array.isArray(v), 'a list')).to.throw(/^cfg\.json: 'list'\[1\] is 1048577/);
  });

  it('words a wrong field the same way in every component config', function () {
    const cases: [() => unknown, RegExp][] = [
      [() => parseUNetConfig({ block_out_channels: [32], down_block_types: ['DownBlock2D'], up_block_types: ['UpBlock2D'], layers_per_block: 'x' }), /^UNet config: 'layers_per_block' must be a positive integer, got "x"$/],
      [() => parseDDIMConfig({ clip_sample: 'x' }), /^scheduler config: 'clip_sample' must be a boolean, got "x"$/],
      [() => parseVaeConfig({ layers_per_block: 'x' }, 'vae.json'), /^vae\.json: 'layers_per_block' must be an integer >= 1, got "x"$/],
      [() => parseClipTextConfig({ vocab_size: 'x' }, 'te.json'), /^te\.json: 'vocab_size' must be an integer >= 1, got "x"$/],
      [() => parseBlipConfig({ text_config: { vocab_size: 'x' } }, 'blip.json'), /^blip\.json: text_config: 'vocab_size' must be an integer >= 1, got "x"$/],
      [() => parseBlipImageProcessorConfig({ do_resize: 'x' }, 'pp.json'), /^pp\.json: 'do_resize' must be true or false, got "x"$/],
    ];
    for (const [parse, message] of cases) expect(parse).to.throw(message);
  });
});
