// Setup file of the lane projects in vitest.config.ts: a test file of a lane
// runs only while it holds that lane, so the files of one lane never overlap
// (they share kernel or machine state), while different lanes and the unit
// files run side by side.
import { afterAll } from 'vitest';
import { acquireLane } from './lane-lock.js';

const lane = process.env['MESHLET_TEST_LANE'];
if (!lane) throw new Error('lane-setup.ts runs only in a lane project: MESHLET_TEST_LANE is not set (see vitest.config.ts)');
const lock = await acquireLane(lane, process.cwd());
afterAll(() => lock.release());
