import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { Jimp } from 'jimp';
import {
  decodeImage,
  imageToTensor,
  prepareImage,
  probeImageSize,
  readImage,
  resizeImage,
  tensorToImage,
  writePng,
  type RgbImage,
} from '../lib/io/image.js';
import { SafetensorsFile } from '../lib/io/safetensors.js';
import { FIXTURES, forEachBackend } from './helpers/tensors.js';

const IMAGES = path.join(FIXTURES, 'reference', 'images');

function pillow(name: string): Int32Array {
  const f = SafetensorsFile.open(path.join(IMAGES, 'pillow.safetensors'));
  try {
    return f.read(name).data as Int32Array;
  } finally {
    f.close();
  }
}

function countDiff(a: Uint8Array, b: Int32Array): number {
  expect(a.length).to.equal(b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe('images', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-img-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('decoding to RGB as Pillow convert("RGB") does', function () {
    for (const name of ['source', 'grey', 'grey_alpha', 'rgba', 'palette']) {
      it(`${name}.png`, async function () {
        const img = await readImage(path.join(IMAGES, `${name}.png`));
        expect([img.width, img.height]).to.deep.equal([53, 37]);
        expect(countDiff(img.data, pillow(`${name}.rgb`)), 'pixels differing from Pillow').to.equal(0);
      });
    }
  });

  describe('resampling matches Pillow bit for bit', function () {
    for (const filter of ['lanczos', 'bicubic', 'bilinear'] as const) {
      it(filter, async function () {
        const src = await readImage(path.join(IMAGES, 'source.png'));
        for (const [w, h] of [[64, 64], [16, 24], [53, 20], [100, 37], [8, 8]] as const) {
          const out = resizeImage(src, w, h, filter);
          expect([out.width, out.height]).to.deep.equal([w, h]);
          expect(countDiff(out.data, pillow(`resize.${filter}.${w}x${h}`)), `${filter} ${w}x${h}`).to.equal(0);
        }
      });
    }
  });

  describe('preparing for the model', function () {
    const img: RgbImage = { width: 30, height: 10, data: new Uint8Array(900).map((_, i) => i % 256) };
    it('stretches to the size by default, as the authors do', function () {
      const out = prepareImage(img, { size: 16 });
      expect([out.width, out.height]).to.deep.equal([16, 16]);
    });
    it('scales and centre-crops with fit "crop"', function () {
      const out = prepareImage(img, { size: [16, 8], fit: 'crop' });
      expect([out.width, out.height]).to.deep.equal([16, 8]);
      const scaled = resizeImage(img, 24, 8);
      // The crop is the middle 16 columns of the image scaled to height 8.
      expect(Array.from(out.data.subarray(0, 3))).to.deep.equal(Array.from(scaled.data.subarray(4 * 3, 4 * 3 + 3)));
    });
    it('refuses sizes that are not multiples of 8', function () {
      expect(() => prepareImage(img, { size: 500 })).to.throw(/multiple of 8.*500/);
      expect(() => prepareImage(img, { size: [512, 0] })).to.throw(/multiple of 8/);
    });
  });

  forEachBackend('tensors', function () {
    it('maps bytes to [-1, 1] and back exactly', function () {
      const img: RgbImage = { width: 4, height: 2, data: Uint8Array.from({ length: 24 }, (_, i) => (i * 37) % 256) };
      const t = imageToTensor(img);
      expect(t.shape).to.deep.equal([1, 2, 4, 3]);
      const v = t.dataSync();
      expect(v[0]).to.equal(-1);
      expect(Math.max(...v)).to.be.at.most(1);
      const back = tensorToImage(t);
      expect(Array.from(back.data)).to.deep.equal(Array.from(img.data));
      expect(back.nanCount).to.equal(0);
      t.dispose();
    });
    it('clamps out-of-range values and counts NaNs', function () {
      const t = tf.tensor3d([2, -3, NaN], [1, 1, 3]);
      const img = tensorToImage(t);
      expect(Array.from(img.data)).to.deep.equal([255, 0, 0]);
      expect(img.nanCount).to.equal(1);
      t.dispose();
    });
    it('refuses tensors that are not images', function () {
      const t = tf.zeros([2, 4, 4, 3]);
      expect(() => tensorToImage(t)).to.throw(/expected an image tensor/);
      t.dispose();
    });
  });

  describe('PNG output', function () {
    it('writes a PNG that reads back identically', async function () {
      const img: RgbImage = { width: 5, height: 3, data: Uint8Array.from({ length: 45 }, (_, i) => (i * 53) % 256) };
      const file = path.join(dir, 'out', 'x.png');
      await writePng(file, img);
      const back = await readImage(file);
      expect(Array.from(back.data)).to.deep.equal(Array.from(img.data));
    });
  });

  describe('bad input gets a clear error', function () {
    it('a missing file', async function () {
      await expectReject(readImage(path.join(dir, 'missing.png')), /image not found/);
    });
    it('an empty file', async function () {
      const f = path.join(dir, 'empty.png');
      fs.writeFileSync(f, '');
      await expectReject(readImage(f), /empty file/);
    });
    it('a file that is not an image', async function () {
      const f = path.join(dir, 'text.png');
      fs.writeFileSync(f, 'hello, this is not a picture');
      await expectReject(readImage(f), /not a PNG, JPEG, GIF or BMP/);
    });
    it('a truncated PNG', async function () {
      const good = fs.readFileSync(path.join(IMAGES, 'source.png'));
      const f = path.join(dir, 'trunc.png');
      fs.writeFileSync(f, good.subarray(0, 60));
      await expectReject(readImage(f), /could not be decoded as png/);
    });
    it('a zero-sized image', async function () {
      const png = fs.readFileSync(path.join(IMAGES, 'source.png'));
      const zero = Buffer.from(png);
      zero.writeUInt32BE(0, 16);
      await expectReject(decodeImage(zero, 'zero.png'), /zero size \(0x37\)/);
    });
    it('an absurdly large image, refused from its header without decoding', async function () {
      const png = Buffer.from(fs.readFileSync(path.join(IMAGES, 'source.png')));
      png.writeUInt32BE(100000, 16);
      png.writeUInt32BE(100000, 20);
      await expectReject(decodeImage(png, 'huge.png'), /100000x100000.*over the limit/);
    });
    it('reads JPEG dimensions from the SOF marker', async function () {
      const jpg = await Jimp.fromBitmap({ width: 24, height: 16, data: Buffer.alloc(24 * 16 * 4, 200) }).getBuffer('image/jpeg');
      expect(probeImageSize(jpg)).to.deep.equal({ width: 24, height: 16, format: 'jpeg' });
      const img = await decodeImage(jpg, 'x.jpg');
      expect([img.width, img.height]).to.deep.equal([24, 16]);
    });
  });
});

async function expectReject(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a rejection').to.be.instanceOf(Error);
  expect((caught as Error).message).to.match(pattern);
}
