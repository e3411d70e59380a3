// Bundle size of @fanfare/client as an application would ship it: every
// module from src/index.ts bundled into one ESM file by esbuild, minified,
// then gzipped. Prints raw and gzip bytes (the figure in README.md).
//
//   node scripts/size.mjs          # human-readable line
//   node scripts/size.mjs --json   # {"raw":…,"gzip":…}

import { build } from 'esbuild';
import { gzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const result = await build({
  entryPoints: [path.join(root, 'src', 'index.ts')],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  write: false,
  logLevel: 'warning',
});
const code = result.outputFiles[0].contents;
const raw = code.byteLength;
const gzip = gzipSync(code, { level: 9 }).byteLength;
if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ raw, gzip }));
} else {
  console.log(`@fanfare/client bundled and minified (esbuild, ESM): ${raw} bytes raw, ${gzip} bytes gzip`);
}
