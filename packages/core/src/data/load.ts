import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DptrainError } from '../errors.js';
import { readCompetition, type CompetitionReadOptions } from './competition.js';
import { readFolders } from './folders.js';
import type { Dataset } from './types.js';

export interface LoadDatasetOptions extends CompetitionReadOptions {
  /** 'competition', 'folders' or 'auto' (competition if train.csv exists, else folders). Default 'auto'. */
  layout?: 'auto' | 'competition' | 'folders';
}

/**
 * Reads a data directory in the competition or folder-per-class layout (no pixels decoded). CSV problems
 * are collected in `readCulprits`; call validateDataset before training to report them with the image checks.
 */
export function loadDataset(dir: string, options: LoadDatasetOptions = {}): Dataset {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new DptrainError('E_DATA_LAYOUT', `data directory ${root} does not exist or is not a directory`);
  }
  const layout = options.layout ?? 'auto';
  if (layout === 'competition' || (layout === 'auto' && existsSync(join(root, options.trainCsv ?? 'train.csv')))) {
    return readCompetition(root, options);
  }
  return readFolders(root, options.classNames ? { classNames: options.classNames } : {});
}
