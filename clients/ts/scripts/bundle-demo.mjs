// The client as the demo pages load it: every module from src/index.ts
// bundled by esbuild into one ESM file (readable, not minified), written to
// the server's demo assets, where the binary embeds it (so building the
// server never needs npm). The file is committed.
//
//   node scripts/bundle-demo.mjs           # write it
//   node scripts/bundle-demo.mjs --check   # fail if the committed file differs from the source's bundle

import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const target = path.resolve(root, '..', '..', 'crates', 'server', 'src', 'demo', 'assets', 'fanfare-client.js');
const banner =
  '// @fanfare/client, bundled for the demo pages by clients/ts/scripts/bundle-demo.mjs.\n' +
  '// Generated: do not edit; run `npm run bundle:demo` in clients/ts after changing the client.';

const result = await build({
  entryPoints: [path.join(root, 'src', 'index.ts')],
  bundle: true,
  minify: false,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  banner: { js: banner },
  legalComments: 'none',
  write: false,
  logLevel: 'warning',
});
const code = result.outputFiles[0].text;
const relative = path.relative(path.resolve(root, '..', '..'), target);

if (process.argv.includes('--check')) {
  const committed = fs.existsSync(target) ? fs.readFileSync(target, 'utf8') : '';
  if (committed !== code) {
    console.error(`${relative} is not the bundle of clients/ts/src: run \`npm run bundle:demo\` in clients/ts`);
    process.exit(1);
  }
  console.log(`${relative} is up to date with clients/ts/src`);
} else {
  fs.writeFileSync(target, code);
  console.log(`wrote ${relative} (${code.length} bytes)`);
}
