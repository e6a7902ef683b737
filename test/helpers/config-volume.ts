// A config volume laid out as the kubelet lays out a ConfigMap: each key is a
// symlink into `..data`, which is swapped atomically to a new `..vN` folder
// (holding the config and, when given, its `.sig`) on every update.
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export class ConfigVolume {
  private n = 0;
  readonly file: string;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = path.join(dir, 'config.yaml');
  }

  publish(text: string | Buffer, sig?: string): void {
    this.n += 1;
    const v = path.join(this.dir, `..v${this.n}`);
    mkdirSync(v);
    writeFileSync(path.join(v, 'config.yaml'), text);
    if (sig !== undefined) writeFileSync(path.join(v, 'config.yaml.sig'), sig);
    symlinkSync(`..v${this.n}`, path.join(this.dir, '..data_tmp'));
    renameSync(path.join(this.dir, '..data_tmp'), path.join(this.dir, '..data'));
    if (this.n === 1) for (const f of ['config.yaml', 'config.yaml.sig']) symlinkSync(`..data/${f}`, path.join(this.dir, f));
    if (this.n > 1) rmSync(path.join(this.dir, `..v${this.n - 1}`), { recursive: true, force: true });
  }
}
