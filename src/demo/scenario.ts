// The demo's mesh (Contrast's emojivoto, as meshlet YAML) and its report.
import type { WireReport } from './capture.js';
import type { AppEvent } from './app.js';
import type { Host, LabSpec, Pod, ProbeResult } from './lab.js';

/** web: TLS for browsers on 8080, egress routes to emoji and voting; emoji and voting: mTLS on every port. */
export const EMOJIVOTO: LabSpec = {
  pods: [
    {
      name: 'web',
      app: { ports: [8080], upstreams: { emoji: 'http://127.137.0.1:8081', voting: 'http://127.137.0.2:8081' } },
      config: {
        ingress: { ports: [{ name: 'web', port: 8080, policy: 'tls' }] },
        egress: {
          routes: [
            { name: 'emoji', listen: '127.137.0.1:8081', remote: 'emoji-svc:8080' },
            { name: 'voting', listen: '127.137.0.2:8081', remote: 'voting-svc:8080' },
          ],
        },
      },
    },
    { name: 'emoji', app: { ports: [8080] }, config: {} },
    { name: 'voting', app: { ports: [8080] }, config: {} },
  ],
  hosts: [{ name: 'browser' }],
};

function webRoutes(): { name: string; listen: string; remote: string }[] {
  const egress = EMOJIVOTO.pods.find((p) => p.name === 'web')?.config?.['egress'] as
    { routes?: { name: string; listen: string; remote: string }[] } | undefined;
  return egress?.routes ?? [];
}

export interface DemoResults {
  page: ProbeResult;
  wire: WireReport;
  emojiSaw: AppEvent | undefined;
  refused: { plaintext: ProbeResult; noCert: ProbeResult; otherCa: ProbeResult };
  refusedBytes: number;
  meshClient: ProbeResult;
  pods: { web: Pod; emoji: Pod; voting: Pod };
  browser: Host;
}

/** "tlsv13 alert certificate required" out of OpenSSL's long message. */
function why(r: ProbeResult): string {
  if (r.status !== undefined) return `NOT refused: HTTP ${r.status}`;
  const alert = /(tlsv1[0-9]? alert [a-z ]+)/.exec(r.error ?? '');
  return `refused (${alert?.[1] ?? r.error ?? 'no answer'})`;
}

function kx(group: string | undefined): string {
  if (group === undefined) return 'key exchange ?';
  return `${group.padEnd(14)} ${group.includes('MLKEM') ? 'post-quantum hybrid' : 'classic'}`;
}

export function report(r: DemoResults): string[] {
  const { web, emoji, voting } = r.pods;
  const name = new Map([
    [web.v4, 'web'],
    [emoji.v4, 'emoji'],
    [voting.v4, 'voting'],
    [r.browser.v4, 'browser'],
  ]);
  const who = (addr: string): string => name.get(addr.replace(/:\d+$/, '')) ?? addr;
  const out: string[] = [];

  out.push(`GET https://web-svc:8080/ from the browser (web's port 8080 is "tls": no client certificate needed)`);
  if (r.page.status === undefined) out.push(`  FAILED: ${r.page.error ?? 'no answer'}`);
  else {
    out.push(
      `  HTTP ${r.page.status} over ${r.page.tls?.protocol ?? '?'}, web presented ` +
        `${r.page.tls?.peerSans ?? '?'}${r.page.tls?.authorized ? ', signed by the mesh CA' : ''}`,
    );
    for (const line of (r.page.body ?? '').trimEnd().split('\n')) out.push(`  | ${line}`);
  }
  out.push('');
  out.push('route  browser -TLS-> web:8080 -TPROXY-> web Envoy -> web app');
  const peer = r.emojiSaw && 'peer' in r.emojiSaw ? r.emojiSaw.peer : '?';
  const route = webRoutes().find((x) => x.name === 'emoji');
  out.push(
    `       web app -http-> ${route?.listen ?? '?'} (egress route) -> web Envoy =mTLS=> ${route?.remote ?? '?'} -TPROXY-> emoji Envoy -> emoji app ` +
      `(peer ${peer})`,
  );
  out.push('');

  const w = r.wire;
  out.push(`wire   tshark on web's link: ${w.sessions.length} TLS sessions, ${w.appDataRecords} encrypted records, ${w.frames} frames`);
  for (const s of w.sessions)
    out.push(`         ${who(s.client).padEnd(7)} -> ${who(s.server).padEnd(6)} ${s.server.padEnd(18)} ${(s.version ?? '?').padEnd(8)} ${kx(s.group)}`);
  const classic = w.sessions.some((s) => s.group !== undefined && !s.group.includes('MLKEM'));
  const fallback = `; classic is the fallback for clients without ML-KEM, such as the browser here, Node's OpenSSL ${process.versions.openssl}`;
  out.push(`       (the group each ServerHello's key share chose${classic ? fallback : ''})`);
  out.push(
    `       payload in clear: ${w.cleartext.length === 0 ? 'none' : `FOUND ${w.cleartext.join(', ')}`} (searched the capture for "served by web", ` +
      `"unicorn", "leaderboard")`,
  );
  out.push('');

  out.push(`bypass straight to emoji's app port ${emoji.v4}:8080 (mtls) from the browser:`);
  out.push(`         plaintext HTTP           ${why(r.refused.plaintext)}`);
  out.push(`         TLS, no client cert      ${why(r.refused.noCert)}`);
  out.push(`         client cert, other CA    ${why(r.refused.otherCa)}`);
  out.push(`         mesh client cert         ${r.meshClient.status === 200 ? 'accepted (HTTP 200), the control' : `FAILED: ${r.meshClient.error ?? ''}`}`);
  out.push(`       emoji's app received ${r.refusedBytes} bytes from the refused clients`);
  return out;
}
