import { availableEngines, skippedEngines, testNatsUrl, testRedisUrl } from './engines.ts';

/** Says once, before and after the run, which engines the flow tests ran on and which were skipped. */
export default function setup(): () => void {
  const ran: string[] = availableEngines().map((e) => e.name);
  if (testRedisUrl()) ran.push('redis');
  if (testNatsUrl()) ran.push('nats');
  const skipped = skippedEngines();
  const line =
    `flow tests run on: ${ran.join(', ')}` +
    (skipped.length ? ` — SKIPPED: ${skipped.map((s) => `${s.name} (set ${s.env})`).join(', ')}` : ' — no engine skipped');
  console.log(`\n[tuangou] ${line}\n`);
  return () => console.log(`\n[tuangou] ${line}\n`);
}
