// What the iptables commands need from the outside world.
import type { Logger } from '../log.js';
import type { BackendChoice } from './backend.js';
import type { CommandRunner } from './runner.js';

export interface IptablesDeps {
  runner: CommandRunner;
  /** nft, legacy, or auto (default): legacy only if it already holds rules. */
  backend?: BackendChoice;
  log?: Logger;
}
