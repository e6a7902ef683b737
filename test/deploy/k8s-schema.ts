// Checks Kubernetes objects against the Kubernetes API's own definitions, the
// way the API server does with strict field validation:
//  - schemaErrors: kubernetes-models' validators, generated from the
//    Kubernetes OpenAPI spec (types, required fields, int-or-string,
//    quantities and other formats);
//  - unknownFields: every field must exist in the API type. The OpenAPI spec
//    does not forbid extra properties, so a misspelt field (`restartpolicy`)
//    passes the validators above; here the TypeScript declarations that
//    kubernetes-models generates from the same spec are walked with the
//    compiler's type checker, so a field the API does not know is reported
//    with its path.
import path from 'node:path';
import ts from 'typescript';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Service } from 'kubernetes-models/v1/Service';

interface Kind {
  validate(data: unknown): void;
  /** The generated interface, as exported by `module`. */
  typeName: string;
  module: string;
}

const KINDS: Record<string, Kind> = {
  'apps/v1 Deployment': {
    validate: (d) => new Deployment(d as ConstructorParameters<typeof Deployment>[0]).validate(),
    typeName: 'IDeployment',
    module: 'kubernetes-models/apps/v1/Deployment',
  },
  'v1 ConfigMap': {
    validate: (d) => new ConfigMap(d as ConstructorParameters<typeof ConfigMap>[0]).validate(),
    typeName: 'IConfigMap',
    module: 'kubernetes-models/v1/ConfigMap',
  },
  'v1 Service': {
    validate: (d) => new Service(d as ConstructorParameters<typeof Service>[0]).validate(),
    typeName: 'IService',
    module: 'kubernetes-models/v1/Service',
  },
};

export const KNOWN_KINDS = Object.keys(KINDS);

function kindOf(obj: unknown): Kind {
  const o = obj as { apiVersion?: unknown; kind?: unknown } | null;
  const key = `${String(o?.apiVersion)} ${String(o?.kind)}`;
  const kind = KINDS[key];
  if (!kind) throw new Error(`no schema for ${key}; known: ${KNOWN_KINDS.join(', ')}`);
  return kind;
}

/** The OpenAPI validators' complaints, one per line; empty when valid. */
export function schemaErrors(obj: unknown): string[] {
  try {
    kindOf(obj).validate(obj);
    return [];
  } catch (err) {
    return (err as Error).message.split(/, (?=data)/).map((s) => s.trim());
  }
}

let cached: { checker: ts.TypeChecker; roots: Map<string, ts.Type> } | undefined;

/** One program, built once: a virtual file that names every root type. */
function typeChecker(): { checker: ts.TypeChecker; roots: Map<string, ts.Type> } {
  if (cached) return cached;
  const root = path.resolve(import.meta.dirname, '../..');
  const fileName = path.join(root, 'test/deploy/__k8s_api_types__.ts');
  const entries = Object.entries(KINDS);
  const text = [
    ...entries.map(([, k], i) => `import type { ${k.typeName} as T${i} } from '${k.module}';`),
    `export interface Roots {`,
    ...entries.map(([key], i) => `  ${JSON.stringify(key)}: T${i};`),
    `}`,
  ].join('\n');
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) =>
    name === fileName ? ts.createSourceFile(name, text, lang, true) : getSourceFile(name, lang, onError, create);
  host.fileExists = (name) => name === fileName || fileExists(name);
  host.readFile = (name) => (name === fileName ? text : readFile(name));
  const program = ts.createProgram([fileName], options, host);
  const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  if (problems.length > 0) throw new Error(`cannot load the Kubernetes API types: ${problems.join('; ')}`);
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(fileName);
  const rootsSymbol = source && checker.getSymbolAtLocation(source)?.exports?.get(ts.escapeLeadingUnderscores('Roots'));
  if (!rootsSymbol) throw new Error('cannot find the Roots interface');
  const rootsType = checker.getDeclaredTypeOfSymbol(rootsSymbol);
  const roots = new Map<string, ts.Type>();
  for (const [key] of entries) {
    const prop = checker.getPropertyOfType(rootsType, key);
    if (prop) roots.set(key, checker.getTypeOfSymbol(prop));
  }
  cached = { checker, roots };
  return cached;
}

/** Fields of `obj` that its Kubernetes API type does not have, as paths. */
export function unknownFields(obj: unknown): string[] {
  const o = obj as { apiVersion?: unknown; kind?: unknown };
  const key = `${String(o.apiVersion)} ${String(o.kind)}`;
  kindOf(obj);
  const { checker, roots } = typeChecker();
  const rootType = roots.get(key);
  if (!rootType) throw new Error(`no API type for ${key}`);
  const out: string[] = [];

  const walk = (value: unknown, declared: ts.Type, at: string): void => {
    const type = checker.getNonNullableType(declared);
    const members = type.isUnion() ? type.types : [type];
    if (Array.isArray(value)) {
      const arrays = members.filter((t) => checker.isArrayType(t));
      const element = arrays[0] && checker.getTypeArguments(arrays[0] as ts.TypeReference)[0];
      if (element) value.forEach((v, i) => walk(v, element, `${at}[${i}]`));
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const objects = members.filter((t) => (t.flags & ts.TypeFlags.Object) !== 0 && !checker.isArrayType(t));
    const target = objects[0];
    if (!target) return;
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const prop = checker.getPropertyOfType(target, k);
      const fieldPath = at === '' ? k : `${at}.${k}`;
      if (prop) {
        walk(v, checker.getTypeOfSymbol(prop), fieldPath);
        continue;
      }
      const index = checker.getIndexInfoOfType(target, ts.IndexKind.String);
      if (index) walk(v, index.type, fieldPath);
      else out.push(`${fieldPath}: unknown field (not in ${checker.typeToString(target)})`);
    }
  };
  walk(obj, rootType, '');
  return out;
}
