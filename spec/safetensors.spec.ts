import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { SafetensorsFile, SafetensorsError, writeSafetensors, MAX_HEADER_BYTES } from '../lib/io/safetensors.js';
import { floatToBFloat16Bits, floatToHalfBits } from '../lib/io/dtypes.js';
import { FIXTURES } from './helpers/tensors.js';

/** A raw safetensors file: an 8-byte length (optionally a lie), the header text, then `data`. */
function rawFile(dir: string, name: string, header: string, data: Uint8Array = new Uint8Array(0), claimedLength?: bigint): string {
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(claimedLength ?? BigInt(h.length));
  const file = path.join(dir, name);
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
  return file;
}

function expectOpenError(file: string, pattern: RegExp): void {
  let caught: unknown;
  try {
    SafetensorsFile.open(file).close();
  } catch (err) {
    caught = err;
  }
  expect(caught, `opening ${path.basename(file)} should fail`).to.be.instanceOf(SafetensorsError);
  const msg = (caught as Error).message;
  expect(msg).to.include(file);
  expect(msg).to.match(pattern);
}

describe('safetensors', function () {
  let dir: string;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'p2pz-st-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  describe('reading files written by the Python safetensors library', function () {
    const file = path.join(FIXTURES, 'safetensors', 'dtypes.safetensors');
    const expectedFile = path.join(FIXTURES, 'safetensors', 'dtypes.json');

    it('decodes every dtype to the values Python wrote', function () {
      if (!fs.existsSync(file)) this.skip();
      const expected = JSON.parse(fs.readFileSync(expectedFile, 'utf8')) as Record<string, { dtype: string; shape: number[]; values: (number | string | boolean)[] }>;
      const f = SafetensorsFile.open(file);
      try {
        const names = Object.keys(expected);
        expect(names.length).to.be.greaterThan(5);
        for (const name of names) {
          const exp = expected[name]!;
          const info = f.info(name);
          expect(info.dtype, name).to.equal(exp.dtype);
          expect([...info.shape], name).to.deep.equal(exp.shape);
          const got = Array.from(f.read(name).data);
          const want = exp.values.map((v) => (v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v === true ? 1 : v === false ? 0 : (v as number)));
          expect(got.length, name).to.equal(want.length);
          got.forEach((g, i) => {
            const w = want[i]!;
            if (Number.isNaN(w)) expect(Number.isNaN(g), `${name}[${i}]`).to.equal(true);
            else if (exp.dtype === 'F64') expect(g, `${name}[${i}]`).to.equal(Math.fround(w));
            else expect(Object.is(g, w) || g === w, `${name}[${i}]: ${g} vs ${w}`).to.equal(true);
          });
        }
      } finally {
        f.close();
      }
    });
  });

  describe('writer', function () {
    it('round-trips F32, F16, BF16, I32, I64, U8 and BOOL with metadata', function () {
      const file = path.join(dir, 'rt.safetensors');
      const f32 = Float32Array.from([1.5, -2.25, 3e-8, 65504, 1e5]);
      writeSafetensors(
        file,
        {
          b: { dtype: 'F32', shape: [5], data: f32 },
          a: { dtype: 'F16', shape: [5], data: f32 },
          c: { dtype: 'BF16', shape: [1, 5], data: f32 },
          d: { dtype: 'I32', shape: [2, 2], data: Int32Array.from([1, -2, 3, -4]) },
          e: { dtype: 'I64', shape: [2], data: Int32Array.from([7, -9]) },
          f: { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 128, 255]) },
          g: { dtype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) },
          empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
        },
        { format: 'pt', note: 'x' },
      );
      const f = SafetensorsFile.open(file);
      try {
        expect(f.metadata).to.deep.equal({ format: 'pt', note: 'x' });
        expect(f.names()).to.deep.equal(['a', 'b', 'c', 'd', 'e', 'empty', 'f', 'g']);
        expect(Array.from(f.read('b').data)).to.deep.equal(Array.from(f32));
        // float16: 3e-8 is just over half the smallest subnormal 2^-24 and rounds up to it; 1e5 overflows.
        expect(Array.from(f.read('a').data)).to.deep.equal([1.5, -2.25, 2 ** -24, 65504, Infinity]);
        expect(Array.from(f.read('c').data).slice(0, 2)).to.deep.equal([1.5, -2.25]);
        expect(f.read('c').shape).to.deep.equal([1, 5]);
        expect(Array.from(f.read('d').data)).to.deep.equal([1, -2, 3, -4]);
        expect(f.read('d').dtype).to.equal('int32');
        expect(Array.from(f.read('e').data)).to.deep.equal([7, -9]);
        expect(Array.from(f.read('f').data)).to.deep.equal([0, 128, 255]);
        expect(Array.from(f.read('g').data)).to.deep.equal([1, 0]);
        expect(f.read('empty').shape).to.deep.equal([0, 3]);
        // The header is padded to a multiple of 8 bytes, as the reference writer does.
        expect(f.dataStart % 8).to.equal(0);
      } finally {
        f.close();
      }
    });

    it('rounds to float16 and bfloat16 half-to-even like PyTorch', function () {
      expect(floatToHalfBits(1 + 2 ** -11)).to.equal(0x3c00); // tie -> even (1.0)
      expect(floatToHalfBits(1 + 3 * 2 ** -11)).to.equal(0x3c02); // tie -> even (up)
      expect(floatToHalfBits(65520)).to.equal(0x7c00); // rounds to infinity
      expect(floatToHalfBits(-0)).to.equal(0x8000);
      expect(floatToHalfBits(NaN) & 0x7c00).to.equal(0x7c00);
      expect(floatToBFloat16Bits(1 + 2 ** -8)).to.equal(0x3f80); // tie -> even
      expect(floatToBFloat16Bits(1 + 3 * 2 ** -8)).to.equal(0x3f82);
    });

    it('refuses a data length that does not match the shape, and leaves no file behind', function () {
      const file = path.join(dir, 'bad-write.safetensors');
      expect(() => writeSafetensors(file, { x: { dtype: 'F32', shape: [3], data: new Float32Array(2) } })).to.throw(/tensor 'x'.*3 elements.*2/);
      expect(fs.existsSync(file)).to.equal(false);
      expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    });
  });

  describe('malformed files', function () {
    const ok = (name: string, entries: Record<string, unknown>, data: Uint8Array) => rawFile(dir, name, JSON.stringify(entries), data);
    const f32x2 = new Uint8Array(8);

    it('accepts a well-formed hand-made file (the baseline of the cases below)', function () {
      const f = SafetensorsFile.open(ok('good.safetensors', { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32x2));
      expect(f.names()).to.deep.equal(['x']);
      f.close();
    });
    it('a file shorter than the length prefix', function () {
      const file = path.join(dir, 'tiny.safetensors');
      fs.writeFileSync(file, Buffer.from([1, 2, 3]));
      expectOpenError(file, /too short/);
    });
    it('an empty file', function () {
      const file = path.join(dir, 'empty.safetensors');
      fs.writeFileSync(file, '');
      expectOpenError(file, /0 bytes, too short/);
    });
    it('an 8-byte length claiming a terabyte (no huge allocation)', function () {
      expectOpenError(rawFile(dir, 'tb.safetensors', '{}', new Uint8Array(0), 2n ** 40n), /header length 1099511627776 is larger than the file/);
    });
    it('a length claiming 2^64 - 1', function () {
      expectOpenError(rawFile(dir, 'max.safetensors', '{}', new Uint8Array(0), 2n ** 64n - 1n), /larger than the file/);
    });
    it('a header larger than the limit (a sparse file, so nothing big is written or read)', function () {
      const file = path.join(dir, 'huge-header.safetensors');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(MAX_HEADER_BYTES + 1));
      fs.writeFileSync(file, len);
      fs.truncateSync(file, MAX_HEADER_BYTES + 64);
      expectOpenError(file, /exceeds the limit of 104857600 bytes/);
    });
    it('a header that is not JSON', function () {
      expectOpenError(rawFile(dir, 'notjson.safetensors', '{"x": [1, 2'), /not valid JSON/);
    });
    it('a header that is not valid UTF-8', function () {
      const file = path.join(dir, 'utf8.safetensors');
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(4n);
      fs.writeFileSync(file, Buffer.concat([len, Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]));
      expectOpenError(file, /not valid UTF-8/);
    });
    it('a header that is a JSON array', function () {
      expectOpenError(rawFile(dir, 'array.safetensors', '[1, 2, 3]'), /must be a JSON object/);
    });
    it('an unknown dtype', function () {
      expectOpenError(ok('dtype.safetensors', { w: { dtype: 'F128', shape: [1], data_offsets: [0, 8] } }, f32x2), /tensor 'w'.*unknown or unsupported dtype "F128"/);
    });
    it('a negative or fractional shape', function () {
      expectOpenError(ok('shape.safetensors', { w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32x2), /tensor 'w'.*shape/);
      expectOpenError(ok('shape2.safetensors', { w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, f32x2), /tensor 'w'.*shape/);
    });
    it('a shape whose byte size does not match the offsets', function () {
      expectOpenError(ok('size.safetensors', { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32x2), /tensor 'w'.*needs 12 bytes but data_offsets \[0, 8\] give 8/);
    });
    it('a shape whose element count overflows', function () {
      expectOpenError(ok('overflow.safetensors', { w: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, f32x2), /tensor 'w'.*too large/);
    });
    it('offsets past the end of the data (truncated file)', function () {
      expectOpenError(ok('trunc.safetensors', { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32x2), /tensor 'w'.*run past the end of the data \(8 bytes\)/);
    });
    it('offsets with begin after end', function () {
      expectOpenError(ok('order.safetensors', { w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, f32x2), /begin after end/);
    });
    it('malformed offsets', function () {
      expectOpenError(ok('offs.safetensors', { w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, f32x2), /data_offsets must be/);
      expectOpenError(ok('offs2.safetensors', { w: { dtype: 'F32', shape: [2], data_offsets: ['0', '8'] } }, f32x2), /data_offsets must be/);
    });
    it('overlapping tensors', function () {
      const data = new Uint8Array(12);
      expectOpenError(
        ok('overlap.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data),
        /tensor 'b'.*overlap tensor 'a'/,
      );
    });
    it('a gap between tensors, and bytes after the last one', function () {
      const data = new Uint8Array(16);
      expectOpenError(ok('gap.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, data), /gap of 8 unused bytes/);
      expectOpenError(ok('tail.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data), /8 bytes after the last tensor/);
    });
    it('non-string metadata and unexpected fields', function () {
      expectOpenError(ok('meta.safetensors', { __metadata__: { a: 1 }, x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32x2), /__metadata__ value 'a' must be a string/);
      expectOpenError(ok('field.safetensors', { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8], extra: 1 } }, f32x2), /unexpected field 'extra'/);
    });
    it('a missing file', function () {
      expectOpenError(path.join(dir, 'nope.safetensors'), /cannot open: ENOENT/);
    });
    it('a tensor name that is not in the file', function () {
      const f = SafetensorsFile.open(ok('good2.safetensors', { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, f32x2));
      try {
        expect(() => f.read('y')).to.throw(SafetensorsError, /tensor 'y': no such tensor/);
      } finally {
        f.close();
      }
    });
  });
});
