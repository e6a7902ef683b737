// Envoy started before node: `meshlet` as the image installs it is a small sh
// script (launcherScript below, written by scripts/install-snapshot.sh) that,
// for `meshlet run`, starts Envoy first and then execs node on the startup
// snapshot. Envoy's own start (about 35 ms of static initialisers before it
// reads its bootstrap) then overlaps node's (about 25 ms before meshlet's
// first line), where a spawn from node comes only after both.
//
// Envoy's bootstrap depends on the config, which only node reads, so the
// early Envoy reads it from a FIFO: its `-c` is /dev/shm/meshlet-envoy.PID.json,
// made by the script (root's, or the proxy uid's when meshlet runs as that
// uid; mode 0644, as the bootstrap file is: it holds paths and ports, no
// secret). Envoy's open of it waits, with nothing bound and no config, until
// `meshlet run` has loaded the config, prepared the runtime directory and
// rendered the bootstrap, and opens the FIFO to write it; Envoy then reads
// exactly what a spawn from node would have read from the file, and goes on.
// (A pipe on Envoy's stdin would not do: Envoy reopens `/dev/fd/0`, and that
// open waits for a writer that may have come and gone.) The script starts
// Envoy as the supervisor would for the default proxy uid (1337), with the
// same setpriv argv; run adopts it only if its command line is exactly the
// one it would run for this config (envoyCommand with the FIFO as the
// bootstrap) and, once setpriv has executed Envoy, it runs as the config's
// proxy uid and gid; it kills it and spawns its own otherwise (a config with
// another proxy uid, say). Nobody but the FIFO's owner can write it, so
// Envoy reads only what run wrote; another uid could open it to read (what
// the 0644 bootstrap file shows anyway) and take part of the text, and then
// Envoy fails on the rest and is restarted on the file: a slower start, not
// another config.
//
// The script is node's parent before the exec and node is the same process
// after it, so the early Envoy is node's child: it gets the parent-death
// SIGKILL from setpriv as a spawned one does. But libuv waits only for the
// children it spawned, so the supervisor learns of its exit from
// /proc/PID/stat (the state turns Z and the wait status is there), and the
// process stays a zombie until meshlet exits: at most one, as only the first
// Envoy is adopted; restarts are spawned by node.
import { asProxyUid, ENVOY_LOG_FORMAT } from './supervisor.js';
import type { FlagDoc } from '../cli/usage.js';
import { commandLineOf, idsOf, parentOf } from './proc.js';
const { closeSync, constants, lstatSync, openSync, readFileSync, unlinkSync, writeSync } = process.getBuiltinModule('node:fs');

/** How the script tells node about the Envoy it started: `PID:FIFO`. */
export const EARLY_ENV = 'MESHLET_LAUNCHER_ENVOY';
/**
 * Where the script makes the FIFO: a tmpfs that is writable in a container
 * with a read-only root filesystem, sticky, so nobody else can rename or
 * remove it. `.json` tells Envoy the bootstrap's format.
 */
const FIFO_PATTERN = /^\/dev\/shm\/meshlet-envoy\.([0-9]+)\.json$/;

/** The launcher pid a FIFO path of the launcher's names (its meshlet's pid too: the launcher execs node), or undefined for any other path. */
export function launcherPidOf(fifo: string): number | undefined {
  const m = FIFO_PATTERN.exec(fifo);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}
/** Larger than this and the write could wait for Envoy's read: the pipe's buffer is 64 KiB. */
const MAX_PIPED_BOOTSTRAP = 60 * 1024;
/** How often run tries to open the FIFO for writing, until Envoy has opened it for reading. */
const OPEN_RETRY_MS = 2;

const sq = (s: string): string => {
  if (s.includes("'")) throw new Error(`launcher: cannot quote ${s}`);
  return `'${s}'`;
};

export interface LauncherOptions {
  /** The words of dist/src/cli.js's `#!/usr/bin/env -S` line: environment assignments, `node`, node's flags. */
  nodeLine: string[];
  blob: string;
  /** `meshlet run`'s flags (and the global ones): the script reads the Envoy ones and passes over the rest. */
  runFlags: readonly FlagDoc[];
  proxyUid: number;
  proxyGid: number;
}

/**
 * The sh text of the `meshlet` launcher. For `meshlet run` with only flags it
 * knows, as root or as the proxy uid, with Envoy found (--envoy, then
 * MESHLET_ENVOY, then PATH) and a FIFO made in /dev/shm, it starts Envoy as
 * described at the top of this file; in every other case it only starts
 * node, and node spawns Envoy itself as before. Envoy's argv is envoyCommand's,
 * written out here so that the two cannot differ (run compares them).
 */
export function launcherScript(o: LauncherOptions): string {
  const assignments: string[] = [];
  const words = [...o.nodeLine];
  while (words[0]?.includes('=')) assignments.push(words.shift() ?? '');
  if (words.shift() !== 'node') throw new Error('launcher: the #! line does not run node');
  const valued = o.runFlags.filter((f) => f.arg !== undefined && f.name !== 'envoy' && f.name !== 'envoy-log-level').map((f) => `--${f.name}`);
  const plain = o.runFlags.filter((f) => f.arg === undefined && f.name !== 'no-envoy' && f.name !== 'help').map((f) => `--${f.name}`);
  const envoyArgs = [
    '-c',
    '"$fifo"',
    '--log-level',
    '"$level"',
    '--log-format',
    sq(ENVOY_LOG_FORMAT),
    '--disable-hot-restart',
    '--file-flush-interval-msec',
    '1000',
  ];
  const asRoot = asProxyUid(o.proxyUid, o.proxyGid).join(' ');
  return [
    '#!/bin/sh',
    '# meshlet, started from its V8 startup snapshot (src/snapshot.ts). Written by scripts/install-snapshot.sh from',
    '# src/envoy/early.ts, which says why `meshlet run` starts Envoy here, before node, on a bootstrap it reads from a',
    '# pipe that node writes once it has read the config. Anything unexpected here leaves Envoy to node, as before.',
    `unset ${EARLY_ENV}`,
    'early_envoy() {',
    '  envoy=${MESHLET_ENVOY-} level=warning',
    '  shift',
    '  while [ $# -gt 0 ]; do',
    '    case $1 in',
    '      --envoy) [ $# -ge 2 ] || return 1; envoy=$2; shift 2 ;;',
    '      --envoy=*) envoy=${1#*=}; shift ;;',
    '      --envoy-log-level) [ $# -ge 2 ] || return 1; level=$2; shift 2 ;;',
    '      --envoy-log-level=*) level=${1#*=}; shift ;;',
    ...(valued.length > 0
      ? [`      ${valued.join('|')}) [ $# -ge 2 ] || return 1; shift 2 ;;`, `      ${valued.map((f) => `${f}=*`).join('|')}) shift ;;`]
      : []),
    ...(plain.length > 0 ? [`      ${plain.join('|')}) shift ;;`] : []),
    '      *) return 1 ;;',
    '    esac',
    '  done',
    '  if [ -z "$envoy" ]; then',
    '    IFS=:',
    '    for d in $PATH; do',
    '      case $d in "" | */shims) continue ;; esac',
    '      if [ -f "$d/envoy" ] && [ -x "$d/envoy" ]; then envoy=$d/envoy; break; fi',
    '    done',
    '    unset IFS',
    '    [ -n "$envoy" ] || return 1',
    '  fi',
    '  uid=',
    '  while read -r key real rest; do [ "$key" = Uid: ] && uid=$real && break; done < /proc/self/status',
    '  case $uid in',
    `    0) set -- setpriv ${asRoot} ;;`,
    `    ${o.proxyUid}) set -- setpriv --pdeathsig=SIGKILL -- ;;`,
    '    *) return 1 ;;',
    '  esac',
    '  fifo=/dev/shm/meshlet-envoy.$$.json',
    // Named by this pid, it can only be left by an earlier process of that pid (a start that failed before run took it).
    '  if [ -p "$fifo" ] && [ -O "$fifo" ]; then rm -f "$fifo"; fi',
    '  mkfifo -m 0644 "$fifo" 2>/dev/null || return 1',
    `  TZ=UTC "$@" "$envoy" ${envoyArgs.join(' ')} </dev/null &`,
    `  ${EARLY_ENV}=$!:$fifo`,
    `  export ${EARLY_ENV}`,
    '}',
    '[ "${1-}" = run ] && early_envoy "$@"',
    ...assignments.map((a) => {
      const [k = ''] = a.split('=', 1);
      return `${k}=${sq(a.slice(k.length + 1))}; export ${k}`;
    }),
    `exec node ${words.join(' ')} --snapshot-blob ${sq(o.blob)} "$0" "$@"`,
    '',
  ].join('\n');
}

/**
 * Writes the launcher to `out` for the built CLI in `dist` (scripts/install-snapshot.sh calls this with the
 * flags of `meshlet run` and the default proxy uid and gid, which it imports from dist/src).
 */
export function writeLauncher(out: string, dist: string, o: Pick<LauncherOptions, 'runFlags' | 'proxyUid' | 'proxyGid'>): void {
  const { chmodSync, readFileSync, renameSync, writeFileSync } = process.getBuiltinModule('node:fs');
  const first = readFileSync(`${dist}/src/cli.js`, 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\/usr\/bin\/env -S (.*)$/.exec(first);
  if (!m?.[1]) throw new Error(`${dist}/src/cli.js does not start with a '#!/usr/bin/env -S … node' line`);
  const text = launcherScript({ ...o, nodeLine: m[1].trim().split(/\s+/), blob: `${dist}/meshlet.blob` });
  writeFileSync(`${out}.tmp`, text, { mode: 0o755 });
  chmodSync(`${out}.tmp`, 0o755);
  renameSync(`${out}.tmp`, out);
}

/** An Envoy the launcher started, handed to `meshlet run`. */
export interface EarlyEnvoy {
  pid: number;
  /** Its bootstrap's FIFO (its `-c`). */
  fifo: string;
}

function removeFifo(fifo: string): void {
  try {
    const st = lstatSync(fifo);
    if (st.isFIFO() && st.uid === myUid()) unlinkSync(fifo);
  } catch {
    // Gone already.
  }
}

const myUid = (): number => process.geteuid?.() ?? 0;

/**
 * Takes the launcher's Envoy from the environment (and removes the variable,
 * so that no Envoy meshlet spawns later inherits it). Only a child of this
 * process, waiting on a FIFO of this uid that no other uid can write, is
 * taken; anything else is reported in the returned problem and left alone:
 * never signal a process that is not ours.
 */
export function takeEarlyEnvoy(env: NodeJS.ProcessEnv = process.env): { early?: EarlyEnvoy; problem?: string } {
  const value = env[EARLY_ENV];
  delete env[EARLY_ENV];
  if (value === undefined || value === '') return {};
  const m = /^([0-9]+):(.*)$/.exec(value);
  if (!m?.[1] || m[2] === undefined || launcherPidOf(m[2]) === undefined)
    return { problem: `${EARLY_ENV}="${value}" is not PID:/dev/shm/meshlet-envoy.N.json` };
  const pid = Number(m[1]);
  const fifo = m[2];
  let st;
  try {
    st = lstatSync(fifo);
  } catch (err) {
    return { problem: `${EARLY_ENV} names ${fifo}: ${(err as Error).message}` };
  }
  if (!st.isFIFO() || st.uid !== myUid() || (st.mode & 0o022) !== 0) {
    return { problem: `${EARLY_ENV} names ${fifo}, which is not a FIFO of uid ${myUid()} that only it can write` };
  }
  if (parentOf(pid) !== process.pid) {
    removeFifo(fifo);
    return { problem: `${EARLY_ENV} names process ${pid}, which is not a child of meshlet (pid ${process.pid})` };
  }
  return { early: { pid, fifo } };
}

/**
 * Why the launcher's Envoy is not the one this config needs, or undefined when
 * it is: its command line is `want`, all of it (setpriv has not executed
 * Envoy yet, and will switch to the ids in it) or what follows setpriv's `--`
 * (it has, and then its real, effective, saved and filesystem uid and gid
 * must be the proxy uid and gid, which that part of the command line does not
 * show).
 */
export function notAdoptable(pid: number, want: readonly string[], ids: { uid: number; gid: number }): string | undefined {
  const got = commandLineOf(pid);
  if (!got) return 'it has exited';
  const eq = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
  if (eq(got, want)) return undefined;
  const cut = want.indexOf('--');
  if (cut < 0 || !eq(got, want.slice(cut + 1))) return `it runs ${JSON.stringify(got)}, and this config needs ${JSON.stringify(want)}`;
  let status = '';
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return 'it has exited';
  }
  for (const [key, id] of [
    ['Uid', ids.uid],
    ['Gid', ids.gid],
  ] as const) {
    const values = idsOf(status, key);
    if (values.length !== 4 || values.some((v) => v !== id))
      return `it runs as ${key.toLowerCase()} ${values.join('/')}, and this config's proxy ${key.toLowerCase()} is ${id}`;
  }
  return undefined;
}

/**
 * Gives the early Envoy its bootstrap. Envoy opens the FIFO for reading once
 * its own start reaches the bootstrap; until then a non-blocking open for
 * writing fails (ENXIO). Once it opens: write the text, close (Envoy reads to
 * the end), remove the FIFO; `done` then resolves. It rejects when Envoy ends
 * first (`alive` says whether it runs) or the text would not fit the pipe.
 *
 * Each try is one open that does not wait. A timer tries every
 * OPEN_RETRY_MS, but a timer runs only when meshlet gives the event loop a
 * turn, and `meshlet run` does the steps that follow the adoption (the
 * certificates' checks, the first snapshot) in one stretch: Envoy, which
 * reaches its open a few ms after the adoption, or before it, would wait for
 * all of them (about 20 ms, measured from both logs). So run also calls
 * poke() between those steps: Envoy waits for one step at most.
 */
export class BootstrapHandoff {
  readonly done: Promise<void>;
  private readonly bytes: Buffer;
  private timer: NodeJS.Timeout | undefined;
  private settled = false;
  private settle!: (err?: Error) => void;

  constructor(
    private readonly early: EarlyEnvoy,
    text: string,
    private readonly alive: () => boolean,
  ) {
    this.bytes = Buffer.from(text);
    this.done = new Promise<void>((resolve, reject) => {
      this.settle = (err) => {
        this.settled = true;
        clearTimeout(this.timer);
        removeFifo(this.early.fifo);
        if (err) reject(err);
        else resolve();
      };
    });
    if (this.bytes.length > MAX_PIPED_BOOTSTRAP) this.settle(new Error(`the bootstrap (${this.bytes.length} bytes) is larger than the pipe takes at once`));
    else this.poke();
  }

  /** Tries once, now, unless Envoy has its bootstrap already (or it failed); schedules the next try if Envoy is not there yet. */
  poke(): void {
    if (this.settled) return;
    clearTimeout(this.timer);
    let fd: number;
    try {
      fd = openSync(this.early.fifo, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') return this.settle(err as Error);
      if (!this.alive()) return this.settle(new Error('Envoy exited before it read its bootstrap'));
      this.timer = setTimeout(() => this.poke(), OPEN_RETRY_MS);
      return;
    }
    try {
      let off = 0;
      while (off < this.bytes.length) off += writeSync(fd, this.bytes, off, this.bytes.length - off);
    } catch (err) {
      return this.settle(err as Error);
    } finally {
      closeSync(fd);
    }
    this.settle();
  }
}

/** Ends an early Envoy that is not adopted, or whose bootstrap could not be given: SIGKILL (it is meshlet's child), and its FIFO removed. */
export function endEarlyEnvoy(early: EarlyEnvoy): void {
  try {
    // Safe by pid: a child that node has not reaped keeps its pid, even once it has exited.
    process.kill(early.pid, 'SIGKILL');
  } catch {
    // Gone already.
  }
  removeFifo(early.fifo);
}
