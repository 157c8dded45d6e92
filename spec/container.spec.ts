import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { createContainer, resolveService } from '../lib/container.js';
import { DDIMInverter } from '../lib/editing/ddim-inverter.js';
import { SentenceDirectionDiscovery } from '../lib/editing/direction-discovery.js';
import { CrossAttentionGuidedSampler } from '../lib/editing/guided-sampler.js';
import { type DirectionDiscovery, type GuidedSampler, type Inverter, type TextEmbedder, TYPES } from '../lib/editing/services.js';
import { FakeDenoiser } from './helpers/fake-denoiser.js';

const embedder: TextEmbedder = {
  embed: async (p) => tf.zeros([p.length, 77, 4]) as tf.Tensor3D,
  meanEmbedding: async () => tf.zeros([1, 77, 4]) as tf.Tensor3D,
};

describe('service container', function () {
  it('builds the editing services from the model-backed instances', function () {
    const unet = new FakeDenoiser(4);
    try {
      const c = createContainer({ textEmbedder: embedder, denoiser: unet, schedulerConfig: {}, directionSettings: { modelId: 'm', cacheDir: false } });
      expect(c.get<DirectionDiscovery>(TYPES.DirectionDiscovery)).to.be.instanceOf(SentenceDirectionDiscovery);
      expect(c.get<Inverter>(TYPES.Inverter)).to.be.instanceOf(DDIMInverter);
      const sampler = c.get<GuidedSampler>(TYPES.GuidedSampler);
      expect(sampler).to.be.instanceOf(CrossAttentionGuidedSampler);
      expect(c.get<GuidedSampler>(TYPES.GuidedSampler), 'singletons').to.equal(sampler);
    } finally {
      unet.dispose();
    }
  });
  it('lets a caller replace a service', function () {
    const mine: Inverter = { invert: async (x) => [tf.clone(x)] };
    const c = createContainer({ inverter: mine });
    expect(c.get<Inverter>(TYPES.Inverter)).to.equal(mine);
  });
  it('names a service nothing provides', function () {
    expect(() => resolveService(createContainer(), TYPES.Captioner)).to.throw(/no implementation is bound for pix2pix-zero.Captioner/);
  });
});
