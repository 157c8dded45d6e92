/**
 * The shipped default model (converted_models/toyworld) as the README's first command runs it: the folder's own
 * BLIP captioner writes the ground-truth description of the bundled held-out example, and the edit runs end to
 * end and writes the image. (Its numerics are the same code the parity suites check on the fixture pipelines.)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { DEFAULT_MODEL } from '../lib/paths.js';
import { readImage } from '../lib/io/image.js';
import { cli } from './helpers/cli.js';
import { ROOT } from './helpers/tensors.js';

describe('the shipped default model', function () {
  it("captions the bundled example correctly and edits it (the README's command, fewer steps)", async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'default-model-'));
    try {
      const out = path.join(dir, 'edited.png');
      const r = cli(
        ['edit', path.join(ROOT, 'assets', 'examples', 'toyworld.png'), '--task', 'red2blue', '--reg-steps', '0', '--guidance-scale', '2', '--xa-guidance', '0.5', '--steps', '10', '--out', out, '--json', '--no-cache'],
        { PIX2PIX_ZERO_MODEL: '' },
      );
      expect(r.code, r.err).to.equal(0);
      const report = JSON.parse(r.out) as { caption: string; size: number[] };
      expect(path.basename(DEFAULT_MODEL)).to.equal('toyworld');
      // tools/toyworld/world.py's description of held-out seed 1000000073, which the example is.
      expect(report.caption).to.equal('a large red circle on a striped blue and beige background');
      expect(report.size).to.deep.equal([64, 64]);
      const img = await readImage(out);
      expect([img.width, img.height]).to.deep.equal([64, 64]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
