/**
 * Optional CPU profile of a benchmark's measuring window only (not its
 * set-up): `BENCH_PROFILE=out.cpuprofile npm run bench heartbeat`. Open the
 * file in Chrome DevTools, or summarise it with `node bench/profile-top.mjs`.
 */
import fs from 'node:fs/promises';
import { Session } from 'node:inspector/promises';

export interface Profile { stop(): Promise<void> }

export async function startProfile(file: string | undefined): Promise<Profile> {
  if (!file) return { stop: async () => undefined };
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop');
      await fs.writeFile(file, JSON.stringify(profile));
      session.disconnect();
    },
  };
}
