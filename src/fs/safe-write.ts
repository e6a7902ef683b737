// Writing a file so that nobody else who can write its directory can
// redirect it: the bytes go to a fresh, unguessable temp name opened
// exclusive and no-follow (a planted file or symlink makes the open fail
// instead of being followed), are synced (unless the caller opts out), then
// renamed over the target. The rename replaces whatever was at the target (a
// symlink is replaced, never followed), so the target always gets this
// file's mode, not an old one's.
const { closeSync, constants, fchmodSync, fsyncSync, openSync, readSync, renameSync, unlinkSync, writeSync } = process.getBuiltinModule('node:fs');
const path = process.getBuiltinModule('node:path');

/** Owner-only: for anything holding key material. */
export const SECRET_MODE = 0o600;
/** Readable by all: for files another uid (Envoy) must read and that hold no secret. */
export const PUBLIC_MODE = 0o644;

export interface WriteOptions {
  /**
   * fsync the file and its directory (the default). A file rewritten at every
   * start before anything reads it (Envoy's bootstrap) needs no durability, and
   * on a disk two syncs cost tens of milliseconds; the rename alone still
   * shows readers the old file or the whole new one.
   */
  sync?: boolean;
}

/**
 * The temp name's random part: 8 bytes from the kernel's generator, read from
 * /dev/urandom rather than through node:crypto, whose loading would cost
 * `meshlet run` milliseconds before it spawns Envoy (this module writes the
 * bootstrap). node:crypto only where /dev/urandom cannot be read.
 */
function tempSuffix(): string {
  const bytes = Buffer.alloc(8);
  try {
    const fd = openSync('/dev/urandom', constants.O_RDONLY);
    try {
      if (readSync(fd, bytes, 0, 8, null) === 8) return bytes.toString('hex');
    } finally {
      closeSync(fd);
    }
  } catch {
    // Below.
  }
  return process.getBuiltinModule('node:crypto').randomBytes(8).toString('hex');
}

export function writeFileAtomic(target: string, data: string | Uint8Array, mode: number, opts: WriteOptions = {}): void {
  const sync = opts.sync ?? true;
  const dir = path.dirname(target);
  const tmp = path.join(dir, `.${path.basename(target)}.${tempSuffix()}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    try {
      // The umask may have narrowed the mode at creation; set it exactly, on the descriptor.
      fchmodSync(fd, mode);
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      if (sync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      /* already renamed or never created */
    }
    throw err;
  }
  if (sync) syncDir(dir);
}

/** Makes the rename durable; best effort (some file systems refuse fsync on a directory). */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch {
    /* not every file system supports it; the data itself was synced */
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
