/**
 * `npm run render-compose-config`: writes docker/temporal/config/ from src/cluster/layout.ts, the
 * template `npm run cluster` uses too. test/unit/compose.test.ts fails when they differ.
 */
import fs from 'node:fs';
import path from 'node:path';
import { COMPOSE, composeConfigFiles } from '../src/cluster/layout.ts';
import { PROJECT_ROOT } from '../src/config.ts';

const dir = path.join(PROJECT_ROOT, COMPOSE.configDir);
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
for (const [name, text] of Object.entries(composeConfigFiles())) {
  fs.writeFileSync(path.join(dir, name), text);
  console.log(`wrote ${path.join(COMPOSE.configDir, name)}`);
}
