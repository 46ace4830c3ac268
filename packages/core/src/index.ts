// @dptrain/core — explicit barrel. Each area keeps its own index.ts.
export * from './errors.js';
export * from './config.js';
export * from './util/index.js';
export * from './events/index.js';
export * from './backend/index.js';
export * from './data/index.js';
export * from './models/index.js';
export * from './training/index.js';
export * from './protocol/index.js';
export {
  AUGMENT_PRESET,
  NO_AUGMENTATION,
  RUN_CONFIG_DEFAULTS,
  backboneDefaults,
  mergeConfigOverrides,
  readConfigFile,
  resolveRunConfig,
  runConfigToYaml,
  unknownConfigKeys,
  type RunConfigOverrides,
} from './config-resolve.js';
