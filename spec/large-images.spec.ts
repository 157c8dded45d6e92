/**
 * Kind 8 of issue 18, large valid images decode: every image under the documented limit (64 megapixels) decodes,
 * JPEGs included (jpeg-js has memory and resolution limits of its own, now aligned), and --help says the limit.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { Jimp } from 'jimp';
import { MAX_IMAGE_PIXELS, readImage } from '../lib/io/image.js';
import { cli } from './helpers/cli.js';

describe('images under the documented limit decode (issue 18, kind 8)', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-large-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('an 8000 x 8000 JPEG (64 megapixels, under the limit) decodes', async function () {
    this.timeout(300_000);
    const side = 8000;
    expect(side * side).to.be.at.most(MAX_IMAGE_PIXELS);
    const file = path.join(dir, 'big.jpg');
    const image = new Jimp({ width: side, height: side, color: 0x336699ff });
    fs.writeFileSync(file, await image.getBuffer('image/jpeg', { quality: 10 }));
    const rgb = await readImage(file);
    expect([rgb.width, rgb.height]).to.deep.equal([side, side]);
    const mid = ((side / 2) * side + side / 2) * 3;
    expect(Math.abs(rgb.data[mid]! - 0x33)).to.be.below(16); // quality 10
    expect(Math.abs(rgb.data[mid + 2]! - 0x99)).to.be.below(16);
  });

  it('the commands that read images state the limit in --help', function () {
    for (const command of ['edit', 'invert', 'caption']) {
      expect(cli([command, '--help']).out, command).to.match(/at most 64 megapixels \(8192x8192\) and 256 MiB/);
    }
  });
});
