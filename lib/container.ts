/**
 * The one place that builds the service graph (inversify). The model-backed pieces (text embedder, captioner,
 * denoiser, scheduler config) are given as instances; the editing services (direction discovery, inverter,
 * guided sampler) are classes the container constructs from them. The scheduler factory is built from the
 * scheduler config (its `_class_name` picks the schedulers); the inverter and the sampler take a fresh scheduler
 * from it for every pass. Any service can be replaced by passing an
 * instance (a remote captioner, a different sampler).
 */
import 'reflect-metadata';
import { Container } from 'inversify';
import type { JsonObject } from './io/json.js';
import { DDIMInverter } from './editing/ddim-inverter.js';
import { SentenceDirectionDiscovery } from './editing/direction-discovery.js';
import { CrossAttentionGuidedSampler } from './editing/guided-sampler.js';
import type { DenoiserPort } from './editing/ports.js';
import { ConfigSchedulerFactory } from './schedulers/factory.js';
import type { SchedulerFactory } from './schedulers/scheduler.js';
import {
  type Captioner,
  type DirectionDiscovery,
  type DirectionDiscoverySettings,
  type GuidedSampler,
  type Inverter,
  type TextEmbedder,
  TYPES,
} from './editing/services.js';

/** The instances the container is built from; each service may also be overridden. */
export interface ServiceOverrides {
  captioner?: Captioner;
  textEmbedder?: TextEmbedder;
  denoiser?: DenoiserPort;
  schedulerConfig?: JsonObject;
  /** Replaces the factory built from `schedulerConfig`. */
  schedulerFactory?: SchedulerFactory;
  directionSettings?: DirectionDiscoverySettings;
  directionDiscovery?: DirectionDiscovery;
  inverter?: Inverter;
  guidedSampler?: GuidedSampler;
}

/** Builds a container: given instances bound to their tokens, the editing services bound to their classes. */
export function createContainer(services: ServiceOverrides = {}): Container {
  const container = new Container({ defaultScope: 'Singleton' });
  const bind = <T>(token: symbol, value: T | undefined): void => {
    if (value !== undefined) container.bind<T>(token).toConstantValue(value);
  };
  bind(TYPES.Captioner, services.captioner);
  bind(TYPES.TextEmbedder, services.textEmbedder);
  bind(TYPES.Denoiser, services.denoiser);
  bind(TYPES.SchedulerConfig, services.schedulerConfig);
  if (services.schedulerFactory !== undefined) bind(TYPES.SchedulerFactory, services.schedulerFactory);
  else if (services.schedulerConfig !== undefined) {
    const config = services.schedulerConfig;
    container.bind<SchedulerFactory>(TYPES.SchedulerFactory).toDynamicValue(() => new ConfigSchedulerFactory(config));
  }
  bind(TYPES.DirectionDiscoverySettings, services.directionSettings);
  if (services.directionDiscovery !== undefined) bind(TYPES.DirectionDiscovery, services.directionDiscovery);
  else container.bind<DirectionDiscovery>(TYPES.DirectionDiscovery).to(SentenceDirectionDiscovery);
  if (services.inverter !== undefined) bind(TYPES.Inverter, services.inverter);
  else container.bind<Inverter>(TYPES.Inverter).to(DDIMInverter);
  if (services.guidedSampler !== undefined) bind(TYPES.GuidedSampler, services.guidedSampler);
  else container.bind<GuidedSampler>(TYPES.GuidedSampler).to(CrossAttentionGuidedSampler);
  return container;
}

/** Resolves a service, with an error that names it when nothing provides it. */
export function resolveService<T>(container: Container, token: symbol): T {
  if (!container.isBound(token)) throw new Error(`no implementation is bound for ${token.description ?? String(token)}`);
  return container.get<T>(token);
}
