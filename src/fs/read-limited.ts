// Reading an operator-supplied file without trusting what it is: a FIFO would
// block the read forever, /dev/zero never ends, and a huge file costs memory
// on every poll. The file is opened non-blocking (so a FIFO with no writer
// opens at once), checked to be a regular file on the descriptor we will
// read from, and read up to a limit. A caller may also require that the file
// read lies inside a directory, checked on that descriptor too: a config file
// on a volume that someone else writes could be a symlink to a file meshlet
// can read and should never print (an error message quotes what it read).
import type { Stats } from 'node:fs';
const { closeSync, constants, fstatSync, openSync, readSync, readlinkSync } = process.getBuiltinModule('node:fs');

/** Config and PEM files are a few KB; this leaves room for big route lists and CA bundles. */
export const MAX_INPUT_BYTES = 4 * 1024 * 1024;

export class InputFileError extends Error {
  constructor(
    readonly file: string,
    readonly code: 'ENOENT' | 'EACCES' | 'EPERM' | 'EISDIR' | 'ENOTREG' | 'ETOOBIG' | 'EBINARY' | 'EOUTSIDE' | 'EOTHER',
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'InputFileError';
  }
}

function describeType(mode: number): string {
  const t = mode & constants.S_IFMT;
  if (t === constants.S_IFDIR) return 'a directory';
  if (t === constants.S_IFIFO) return 'a FIFO (named pipe)';
  if (t === constants.S_IFCHR) return 'a character device';
  if (t === constants.S_IFBLK) return 'a block device';
  if (t === constants.S_IFSOCK) return 'a socket';
  return 'not a regular file';
}

/** Reads a regular file of at most `limit` bytes as UTF-8, or throws an InputFileError naming it. */
export function readInputFile(file: string, limit = MAX_INPUT_BYTES, within?: string): string {
  return readInputFileStat(file, limit, within).text;
}

/** The same, with the stat of the descriptor the bytes came from. */
export function readInputFileStat(file: string, limit = MAX_INPUT_BYTES, within?: string): { text: string; stat: Stats } {
  const { bytes, stat } = readInputBytesStat(file, limit, within);
  if (bytes.includes(0)) throw new InputFileError(file, 'EBINARY', 'contains NUL bytes: this is a binary file, not YAML or PEM text');
  return { text: bytes.toString('utf8'), stat };
}

/** The raw bytes of a regular file of at most `limit` bytes (for hashes and signatures, which cover bytes, not text). */
export function readInputBytes(file: string, limit = MAX_INPUT_BYTES, within?: string): Buffer {
  return readInputBytesStat(file, limit, within).bytes;
}

/**
 * `within`: a directory's real path (no symlink in it); the file opened must be
 * inside it, whatever symlinks led there. Checked on the open descriptor
 * (/proc/self/fd), so a symlink swapped after the check changes nothing.
 */
function readInputBytesStat(file: string, limit: number, within?: string): { bytes: Buffer; stat: Stats } {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'EISDIR') throw new InputFileError(file, code, (err as Error).message);
    throw new InputFileError(file, 'EOTHER', `cannot open (${code ?? (err as Error).message})`);
  }
  try {
    if (within !== undefined) {
      let real: string;
      try {
        real = readlinkSync(`/proc/self/fd/${fd}`);
      } catch (err) {
        throw new InputFileError(file, 'EOTHER', `cannot tell where it leads (/proc/self/fd: ${(err as Error).message}); refused`);
      }
      if (!real.startsWith(within.endsWith('/') ? within : `${within}/`)) {
        throw new InputFileError(
          file,
          'EOUTSIDE',
          `leads to ${real}, outside ${within}; a config file is read only inside the directory it is named in (the nearest on its path ` +
            `that is no symlink: a link there must not lead meshlet to another file), so name the file itself`,
        );
      }
    }
    const st = fstatSync(fd);
    if (!st.isFile()) {
      const code = st.isDirectory() ? 'EISDIR' : 'ENOTREG';
      throw new InputFileError(file, code, `is ${describeType(st.mode)}, not a regular file; point it at the file itself`);
    }
    if (st.size > limit) throw new InputFileError(file, 'ETOOBIG', `is ${st.size} bytes, over the ${limit}-byte limit for this input`);
    // Read up to one byte past the limit: a file that grows while we read is still refused.
    const chunks: Buffer[] = [];
    let len = 0;
    while (len <= limit) {
      const chunk = Buffer.alloc(Math.min(limit + 1 - len, Math.max(st.size + 1 - len, 64 * 1024)));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      len += n;
    }
    if (len > limit) throw new InputFileError(file, 'ETOOBIG', `grew past the ${limit}-byte limit for this input while being read`);
    return { bytes: Buffer.concat(chunks, len), stat: st };
  } finally {
    closeSync(fd);
  }
}
