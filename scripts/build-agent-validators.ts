/** Writes agent/generated/validators.ts from the JSON Schemas (`npm run agent:validators`). */
import fs from 'node:fs/promises';
import { agentValidatorsSource } from './agent-validators.js';

const file = new URL('../agent/generated/validators.ts', import.meta.url);
await fs.mkdir(new URL('.', file), { recursive: true });
await fs.writeFile(file, agentValidatorsSource());
process.stdout.write('wrote agent/generated/validators.ts\n');
