// The rows in the order they run, numbered as in bench/RESULTS.md.
import type { RowResult } from '../lib/result.js';
import type { Ctx } from './context.js';
import { baselineRow } from './baseline.js';
import { datapathRow } from './datapath.js';
import { footprintRow } from './footprint.js';
import { reloadRow } from './reload.js';
import { rotationRow } from './rotation.js';
import { scale10kRow, scaleRow } from './scale.js';
import { startRow } from './start.js';

export interface Row {
  id: string;
  run: (ctx: Ctx) => Promise<RowResult>;
}

export const ROWS: Row[] = [
  { id: 'baseline', run: baselineRow },
  { id: 'start', run: startRow },
  { id: 'reload', run: reloadRow },
  { id: 'rotation', run: rotationRow },
  { id: 'datapath', run: datapathRow },
  { id: 'scale', run: scaleRow },
  { id: 'scale10k', run: scale10kRow },
  { id: 'footprint', run: footprintRow },
];
