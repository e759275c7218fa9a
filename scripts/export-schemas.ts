/** Writes every JSON Schema to schemas/json/<name>.json for device makers (`npm run schemas:export`). */
import fs from 'node:fs/promises';
import { allSchemas } from '../schemas/definitions.js';

const dir = new URL('../schemas/json/', import.meta.url);
await fs.mkdir(dir, { recursive: true });
for (const [name, schema] of Object.entries(allSchemas)) {
  await fs.writeFile(new URL(`${name}.json`, dir), `${JSON.stringify(schema, null, 2)}\n`);
}
process.stdout.write(`wrote ${Object.keys(allSchemas).length} schemas to schemas/json/\n`);
