#!/usr/bin/env node
// Enforces the module map of DESIGN.md: dependencies point one way
// (model <- config <- engine <- detectors <- alerts/log/ingest/stores <- api/edge/ml <- cli),
// a folder is entered only through its index.ts, and there are no import cycles between folders.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const RANK = { model: 0, config: 1, engine: 2, detectors: 3, alerts: 4, log: 4, ingest: 4, stores: 4, api: 5, edge: 5, ml: 5, cli: 6, ui: 7 };
// Same-rank edges that the design allows (ingest appends to the log).
const ALLOWED_SIDEWAYS = { ingest: ['log'] };
// The edge agent never imports api, ui or stores.
const FORBIDDEN = { edge: ['api', 'ui', 'stores'] };

const root = resolve('src');
const problems = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (/\.tsx?$/.test(name)) check(path);
  }
}
function check(file) {
  const from = relative(root, file).split('/')[0];
  const text = readFileSync(file, 'utf8');
  const re = /(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2];
    const target = resolve(dirname(file), spec);
    const rel = relative(root, target);
    if (rel.startsWith('..')) continue;
    const to = rel.split('/')[0];
    if (to === from) continue;
    const where = `${relative(process.cwd(), file)}: imports ${spec}`;
    if (!(to in RANK)) { problems.push(`${where} (unknown module ${to})`); continue; }
    if ((FORBIDDEN[from] ?? []).includes(to)) problems.push(`${where} (${from} must never import ${to})`);
    const sideways = (ALLOWED_SIDEWAYS[from] ?? []).includes(to);
    if (RANK[to] >= RANK[from] && !sideways) problems.push(`${where} (${from} may not depend on ${to}: arrows point one way)`);
    if (rel !== `${to}/index.js` && rel !== `${to}/index.ts`) problems.push(`${where} (enter ${to} through ${to}/index.ts, not its internals)`);
  }
}
walk(root);
if (problems.length) {
  console.error(problems.join('\n'));
  console.error(`${problems.length} module-layout problem(s)`);
  process.exit(1);
}
console.log('module layout ok');
