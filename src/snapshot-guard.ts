// While the startup snapshot is built (src/snapshot.ts), the top levels of
// the modules in it run once, and what they keep is what every start begins
// with. guardProcess() makes the reads of a process's own state throw while
// they run: the environment, the arguments, the ids, the clocks, random
// numbers, the standard streams, the host and the working directory. A
// module that keeps a reference to one of these functions (a destructured
// `hostname`, say) gets a wrapper that calls the real one once the guard is
// lifted.
type Fn = (...args: unknown[]) => unknown;

export class SnapshotStateError extends Error {}

/** Guards the reads until the returned function lifts the guard. */
export function guardProcess(): () => void {
  let guarding = true;
  const refuse = (what: string): never => {
    throw new SnapshotStateError(`${what} was read while the startup snapshot was built: a module's top level must not read it (src/snapshot.ts)`);
  };
  const saved: [object, string, PropertyDescriptor][] = [];
  const put = (target: object, key: string, value: unknown): void => {
    const d = Object.getOwnPropertyDescriptor(target, key);
    if (!d) throw new Error(`src/snapshot-guard.ts: ${key} is not there to guard`);
    saved.push([target, key, d]);
    Object.defineProperty(target, key, { ...d, value });
  };
  const wrap = (target: object, key: string, label: string): void => {
    const real = (target as Record<string, unknown>)[key];
    if (typeof real !== 'function') throw new Error(`src/snapshot-guard.ts: ${label} is not a function`);
    const guarded = function (this: unknown, ...args: unknown[]): unknown {
      return guarding ? refuse(`${label}()`) : Reflect.apply(real as Fn, this, args);
    };
    put(target, key, Object.assign(guarded, real));
  };
  /** A property read as a value (process.pid, process.stdout): throws while guarding, reads through otherwise. */
  const guardRead = (target: object, key: string, label: string): void => {
    const d = Object.getOwnPropertyDescriptor(target, key);
    if (!d) throw new Error(`src/snapshot-guard.ts: ${label} is not there to guard`);
    saved.push([target, key, d]);
    let value: unknown = d.value;
    Object.defineProperty(target, key, {
      configurable: true,
      enumerable: d.enumerable ?? true,
      get(): unknown {
        if (guarding) refuse(label);
        return d.get ? (d.get.call(target) as unknown) : value;
      },
      set(v: unknown) {
        if (d.set) d.set.call(target, v);
        else value = v;
      },
    });
  };
  const env = process.env;
  const envRead = (k: string | symbol): void => {
    if (guarding) refuse(typeof k === 'string' ? `process.env.${k}` : 'process.env');
  };
  put(
    process,
    'env',
    new Proxy(env, {
      get(t, k): unknown {
        envRead(k);
        return Reflect.get(t, k) as unknown;
      },
      has(t, k) {
        envRead(k);
        return Reflect.has(t, k);
      },
      ownKeys(t) {
        envRead(Symbol('keys'));
        return Reflect.ownKeys(t);
      },
      getOwnPropertyDescriptor(t, k) {
        envRead(k);
        return Reflect.getOwnPropertyDescriptor(t, k);
      },
    }),
  );
  wrap(process.hrtime, 'bigint', 'process.hrtime.bigint');
  for (const key of ['getuid', 'geteuid', 'getgid', 'getegid', 'getgroups', 'cwd', 'hrtime', 'uptime']) wrap(process, key, `process.${key}`);
  for (const key of ['pid', 'ppid', 'argv', 'execArgv', 'title', 'stdin', 'stdout', 'stderr']) guardRead(process, key, `process.${key}`);
  for (const key of ['umask', 'memoryUsage', 'resourceUsage']) wrap(process, key, `process.${key}`);
  wrap(Date, 'now', 'Date.now');
  wrap(Math, 'random', 'Math.random');
  const os = process.getBuiltinModule('node:os');
  for (const key of ['hostname', 'userInfo', 'networkInterfaces', 'homedir', 'tmpdir']) wrap(os, key, `os.${key}`);
  return () => {
    guarding = false;
    for (const [target, key, d] of saved.reverse()) Object.defineProperty(target, key, d);
  };
}
