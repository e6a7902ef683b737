import { describe, expect, it } from 'vitest';
import { buildSnapshot, SnapshotError } from '../../src/xds/snapshot.js';
import { typeUrl, TYPE, type JsonObject } from '../../src/xds/protos.js';
import { decodeAny } from '../../src/xds/reflect.js';
import { CDS, LDS, SDS, cluster, listener, secret } from './ads-fixtures.js';

const tcpProxy = (cluster: string): JsonObject => ({ '@type': typeUrl(TYPE.tcpProxy), stat_prefix: cluster, cluster });

describe('buildSnapshot', () => {
  it('encodes each resource once, with a content-hash version, per type', () => {
    const s = buildSnapshot({ clusters: [cluster('c1')], secrets: [secret('s1')], listeners: [listener('l1', 15001)] });
    const c1 = s.types[CDS]?.resources.get('c1');
    expect(c1?.any.type_url).toBe(CDS);
    expect(decodeAny(c1!.any)).toMatchObject({ name: 'c1', type: 'STATIC' });
    expect(c1?.version).toMatch(/^[0-9a-f]{16}$/);
    expect(Object.keys(s.types).sort()).toEqual([CDS, LDS, SDS].sort());
  });

  it('gives the same bytes and versions for the same content, whatever the key or map order (a restart reuses no version)', () => {
    const a: JsonObject = { ...cluster('c1'), typed_extension_protocol_options: { x: tcpProxy('x'), y: tcpProxy('y') } };
    const b: JsonObject = {
      typed_extension_protocol_options: { y: tcpProxy('y'), x: tcpProxy('x') },
      connect_timeout: '1s',
      type: 'STATIC',
      name: 'c1',
      '@type': CDS,
    };
    const s1 = buildSnapshot({ clusters: [a, cluster('c2')] });
    const s2 = buildSnapshot({ clusters: [cluster('c2'), b] });
    const r1 = s1.types[CDS]?.resources.get('c1');
    const r2 = s2.types[CDS]?.resources.get('c1');
    expect(Buffer.from(r1!.any.value).equals(Buffer.from(r2!.any.value))).toBe(true);
    expect(r1?.version).toBe(r2?.version);
    expect(s1.types[CDS]?.version).toBe(s2.types[CDS]?.version);
    expect([...s2.types[CDS]!.resources.keys()]).toEqual(['c1', 'c2']);
  });

  it('changes the resource and type versions when content changes, and only those', () => {
    const s1 = buildSnapshot({ clusters: [cluster('c1'), cluster('c2')], secrets: [secret('s1')] });
    const s2 = buildSnapshot({ clusters: [cluster('c1', '2s'), cluster('c2')], secrets: [secret('s1')] });
    expect(s2.types[CDS]?.resources.get('c1')?.version).not.toBe(s1.types[CDS]?.resources.get('c1')?.version);
    expect(s2.types[CDS]?.resources.get('c2')?.version).toBe(s1.types[CDS]?.resources.get('c2')?.version);
    expect(s2.types[CDS]?.version).not.toBe(s1.types[CDS]?.version);
    expect(s2.types[SDS]?.version).toBe(s1.types[SDS]?.version);
  });

  it('binds a version to names too: a renamed resource with the same content changes the type version', () => {
    const s1 = buildSnapshot({ secrets: [secret('a', 'X')] });
    const s2 = buildSnapshot({ secrets: [{ ...secret('b', 'X'), name: 'a' }, secret('b', 'X')] });
    expect(s2.types[SDS]?.version).not.toBe(s1.types[SDS]?.version);
  });

  it('reports every problem together', () => {
    let err: unknown;
    try {
      buildSnapshot({
        clusters: [cluster('c1'), cluster('c1'), { '@type': CDS }, { ...cluster('c3'), bogus: 1 }],
        secrets: [{ ...cluster('c4') }],
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SnapshotError);
    const errors = (err as SnapshotError).errors;
    expect(errors).toHaveLength(4);
    expect(errors.join('\n')).toMatch(/duplicate name "c1"/);
    expect(errors.join('\n')).toMatch(/clusters\[2\]: a resource needs a non-empty "name"/);
    expect(errors.join('\n')).toMatch(/clusters\[3\] \(c3\).*no field "bogus"/);
    expect(errors.join('\n')).toMatch(/secrets\[0\] \(c4\): "@type" is .*Cluster.*expected .*Secret/);
  });

  it('is immutable', () => {
    const s = buildSnapshot({ clusters: [cluster('c1')] });
    const c1 = s.types[CDS]?.resources.get('c1');
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(c1)).toBe(true);
    expect(Object.isFrozen(c1?.json)).toBe(true);
  });
});
