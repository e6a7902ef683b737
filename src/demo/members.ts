// What lives in a lab namespace: the app (whose every connection and byte
// the lab sees), and the shapes of pods and plain hosts.
import type { Leaf } from '../devpki/pki.js';
import type { AppEvent } from './app.js';
import type { Proc } from './proc.js';

export interface AppSpec {
  ports: number[];
  /** web only: upstream name → base URL (an egress route's listen address). */
  upstreams?: Record<string, string>;
}

export interface PodSpec {
  /** Short name: namespace label and app name ("web"). */
  name: string;
  /** DNS name in every namespace's /etc/hosts and the certificate's SAN; default `<name>-svc`. */
  service?: string;
  app?: AppSpec;
  /** meshlet config (ingress, egress, …) as YAML; the lab adds the certificate and socket paths. */
  config?: Record<string, unknown>;
  /**
   * Contrast drop-in instead of a config file: these CONTRAST_* variables,
   * Contrast's certificate paths and /var/run/meshlet, each pod in a private
   * mount namespace (see MeshLab.runArgv).
   */
  contrastEnv?: Record<string, string>;
  /**
   * With contrastEnv: run meshlet as the one container that replaces
   * Contrast's sidecar, with these arguments (Contrast passes `-l debug`),
   * instead of `meshlet init` + `meshlet run` + `meshlet wait-ready`. It
   * writes `<pod dir>/ready` (MESHLET_READY_FILE) once ready.
   */
  contrastImage?: string[];
  /** The nameserver in this pod's resolv.conf; default 127.0.0.1, so no lookup leaves the pod. */
  nameserver?: string;
}

export interface HostSpec {
  /** A namespace on the bridge with no meshlet: a client, a server outside the mesh, DNS. */
  name: string;
  app?: AppSpec;
  /** Run the lab DNS responder here with these records. */
  dns?: Record<string, { A?: string[]; AAAA?: string[] }>;
}

/** A running app: its events, parsed from its stdout. */
export class App {
  constructor(readonly proc: Proc) {}

  get events(): AppEvent[] {
    const out: AppEvent[] = [];
    for (const l of this.proc.lines) {
      try {
        out.push(JSON.parse(l) as AppEvent);
      } catch {
        // not an event line
      }
    }
    return out;
  }

  /** How many events so far: pass it to since() to look only at what came after. */
  mark(): number {
    return this.proc.lines.length;
  }

  since(mark: number): AppEvent[] {
    return this.events.slice(mark);
  }

  /** Every byte-carrying event since `mark` (what the app actually received). */
  dataSince(mark: number): Extract<AppEvent, { ev: 'data' }>[] {
    return this.since(mark).filter((e): e is Extract<AppEvent, { ev: 'data' }> => e.ev === 'data');
  }

  async waitFor(match: (e: AppEvent) => boolean, timeoutMs = 5_000, what = 'an app event'): Promise<AppEvent> {
    const line = await this.proc.waitFor(
      (l) => {
        try {
          return match(JSON.parse(l) as AppEvent);
        } catch {
          return false;
        }
      },
      timeoutMs,
      what,
    );
    return JSON.parse(line) as AppEvent;
  }
}

export interface Member {
  name: string;
  /** Network namespace name. */
  ns: string;
  v4: string;
  v6: string;
  /** The veth end in the hub namespace (capture here to see the pod's link). */
  hubDev: string;
  app?: App;
}

export interface Pod extends Member {
  kind: 'pod';
  spec: PodSpec;
  service: string;
  dir: string;
  /** mesh-ca.pem, certChain.pem, key.pem under Contrast's names. */
  certDir: string;
  /** undefined for a Contrast (environment) pod. */
  configPath?: string;
  leaf: Leaf;
  /** Envoy's admin Unix socket, as a host path. */
  adminSocket: string;
  meshlet?: Proc;
}

export interface Host extends Member {
  kind: 'host';
  spec: HostSpec;
  dns?: Proc;
}
