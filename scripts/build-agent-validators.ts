/** Writes agent/generated/*.ts from the JSON Schemas (`npm run agent:validators`); removes the ones no longer generated. */
import fs from 'node:fs/promises';
import { agentValidatorsSources } from './agent-validators.js';

const dir = new URL('../agent/generated/', import.meta.url);
await fs.mkdir(dir, { recursive: true });
const files = agentValidatorsSources();
for (const name of await fs.readdir(dir)) if (name.endsWith('.ts') && !(name in files)) await fs.rm(new URL(name, dir));
for (const [name, text] of Object.entries(files)) await fs.writeFile(new URL(name, dir), text);
process.stdout.write(`wrote agent/generated/${Object.keys(files).join(', ')}\n`);
