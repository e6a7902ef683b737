// A command's result: one JSON document with --json, else the human text.
import type { Values } from './main.js';

export function emit(values: Values, json: unknown, text: string): void {
  if (values['json'] === true) process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
  else if (text !== '') process.stdout.write(text);
}
