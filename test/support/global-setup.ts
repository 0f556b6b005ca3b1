import { availableEngines, skippedEngines } from './engines.ts';

/** Says once, before and after the run, which engines the flow tests ran on and which were skipped. */
export default function setup(): () => void {
  const ran = availableEngines().map((e) => e.name);
  const skipped = skippedEngines();
  const line =
    `flow tests run on: ${ran.join(', ')}` +
    (skipped.length ? ` — SKIPPED: ${skipped.map((s) => `${s.name} (set ${s.env})`).join(', ')}` : ' — no engine skipped');
  console.log(`\n[tuangou] ${line}\n`);
  return () => console.log(`\n[tuangou] ${line}\n`);
}
