/**
 * Model fingerprints: equal for a model and its float32 conversion (so saved inversions and directions carry
 * over), different for another checkpoint of the same architecture and for a float16 conversion.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { convertModelFolder } from '../lib/cli/convert.js';
import { componentFingerprint } from '../lib/io/fingerprint.js';
import { readStableDiffusionFolder } from '../lib/io/model-folder.js';
import { SafetensorsFile, writeSafetensors, type TensorToWrite } from '../lib/io/safetensors.js';
import { TINY_SD } from './helpers/tensors.js';

describe('model fingerprints', function () {
  let tmp: string;
  before(function () {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fingerprint-'));
  });
  after(function () {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('are the same across weight formats at float32 and differ for other weights of the same shapes', function () {
    const original = readStableDiffusionFolder(TINY_SD);
    convertModelFolder(TINY_SD, path.join(tmp, 'f32'));
    convertModelFolder(TINY_SD, path.join(tmp, 'f16'), { dtype: 'float16' });
    const f32 = readStableDiffusionFolder(path.join(tmp, 'f32'));
    const f16 = readStableDiffusionFolder(path.join(tmp, 'f16'));
    for (const part of ['unet', 'vae', 'textEncoder'] as const) {
      expect(componentFingerprint(f32[part]), part).to.equal(componentFingerprint(original[part]));
      expect(componentFingerprint(f16[part]), part).to.not.equal(componentFingerprint(original[part]));
    }

    // The same UNet with one bias nudged: same config and layout, another checkpoint.
    const other = path.join(tmp, 'other');
    fs.cpSync(TINY_SD, other, { recursive: true });
    const file = path.join(other, 'unet', 'diffusion_pytorch_model.safetensors');
    const st = SafetensorsFile.open(file);
    const tensors: Record<string, TensorToWrite> = {};
    const smallest = st.names().filter((n) => st.info(n).shape.reduce((a, b) => a * b, 1) >= 16).sort((a, b) => st.info(a).shape.reduce((x, y) => x * y, 1) - st.info(b).shape.reduce((x, y) => x * y, 1))[0]!;
    for (const name of st.names()) {
      const t = st.read(name);
      const data = name === smallest ? Float32Array.from(t.data as Float32Array, (v, i) => (i === 0 ? v + 1e-3 : v)) : t.data;
      tensors[name] = { dtype: 'F32', shape: t.shape, data };
    }
    st.close();
    writeSafetensors(file, tensors);
    expect(componentFingerprint(readStableDiffusionFolder(other).unet)).to.not.equal(componentFingerprint(original.unet));
  });
});
