// The field parsers a config string field can be checked with, by name: the
// schema names the one each field uses (schema.ts `parsed`), the generator
// writes that name into the generated spec, and the fast validator calls the
// same function by it. zod-free, so the run path can use it.
import { parseCidrField, parseListen, parseLoopback, parseRemote, type Parsed } from './addresses.js';
import { parseDnsAddress, parseRouteName, parseUpstream } from './dns-fields.js';

export const FIELD_PARSERS = {
  parseListen,
  parseRemote,
  parseLoopback,
  parseCidrField,
  parseDnsAddress,
  parseUpstream,
  parseRouteName,
} as const satisfies Record<string, (value: string) => Parsed<unknown>>;

export type FieldParserName = keyof typeof FIELD_PARSERS;
