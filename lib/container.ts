/**
 * The one place that builds the service graph (inversify). Implementations register here as they land; a
 * caller can override any service by passing its own instance (e.g. a captioner that calls a remote model).
 */
import 'reflect-metadata';
import { Container } from 'inversify';
import {
  type Captioner,
  type DirectionDiscovery,
  type GuidedSampler,
  type Inverter,
  type TextEmbedder,
  TYPES,
} from './editing/services.js';
import { ClipTextEmbedder } from './editing/text-embedder.js';

/** Service instances to bind in place of (or before) the defaults. */
export interface ServiceOverrides {
  captioner?: Captioner;
  textEmbedder?: TextEmbedder;
  directionDiscovery?: DirectionDiscovery;
  inverter?: Inverter;
  guidedSampler?: GuidedSampler;
}

/** Builds a container with the given service instances bound to their tokens. */
export function createContainer(services: ServiceOverrides = {}): Container {
  const container = new Container({ defaultScope: 'Singleton' });
  const bind = <T>(token: symbol, value: T | undefined): void => {
    if (value !== undefined) container.bind<T>(token).toConstantValue(value);
  };
  bind(TYPES.Captioner, services.captioner);
  bind(TYPES.TextEmbedder, services.textEmbedder);
  if (services.textEmbedder === undefined) container.bind(TYPES.TextEmbedder).to(ClipTextEmbedder);
  bind(TYPES.DirectionDiscovery, services.directionDiscovery);
  bind(TYPES.Inverter, services.inverter);
  bind(TYPES.GuidedSampler, services.guidedSampler);
  return container;
}

/** Resolves a service, with an error that names it when nothing provides it yet. */
export function resolveService<T>(container: Container, token: symbol): T {
  if (!container.isBound(token)) throw new Error(`no implementation is bound for ${token.description ?? String(token)}`);
  return container.get<T>(token);
}
