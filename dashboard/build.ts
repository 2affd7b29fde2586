/**
 * Builds the dashboard into dashboard/dist/ (what control serves at `/`):
 *
 *   assets/app-<hash>.js, .css     minified bundles (esbuild), source maps alongside
 *   index.html                     references them; no inline script or style (the CSP allows neither)
 *   manifest.json                  {files: [{path, bytes, sha256}]} of everything above
 *
 * and prints each file's size, raw and gzipped. Fails when protocol's runtime
 * (TypeBox and its compiled validators, which need `new Function`, refused by
 * the CSP) found its way into the bundle: the dashboard imports protocol's
 * types only.
 *
 *   node --import tsx dashboard/build.ts      (npm run build:dashboard)
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const assets = join(dist, 'assets');
/** Total gzipped size above which the build fails: the target is well under 150 KiB. */
const GZIP_BUDGET_BYTES = 150 * 1024;

await rm(dist, { recursive: true, force: true });
await mkdir(assets, { recursive: true });

const result = await build({
  entryPoints: { app: join(here, 'src', 'main.tsx') },
  outdir: assets,
  entryNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: 'linked',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  metafile: true,
  legalComments: 'linked',
  define: { 'process.env.NODE_ENV': '"production"' },
  logLevel: 'warning',
});

const leaked = Object.keys(result.metafile.inputs).filter((input) => /(^|\/)protocol\/|@sinclair\/typebox/.test(input));
if (leaked.length > 0) {
  console.error(`the dashboard bundle must not contain protocol's runtime (import its types only):\n  ${leaked.join('\n  ')}`);
  process.exit(1);
}

const outputs = Object.keys(result.metafile.outputs).map((p) => relative(dist, p).split(sep).join('/'));
const js = outputs.find((p) => /^assets\/app-[^/]+\.js$/.test(p));
const css = outputs.find((p) => /^assets\/app-[^/]+\.css$/.test(p));
if (!js || !css) {
  console.error(`expected app-<hash>.js and app-<hash>.css, got ${outputs.join(', ')}`);
  process.exit(1);
}

// The favicon is a data: URL (img-src allows data:), so the browser asks for no /favicon.ico.
const favicon =
  "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Cdefs%3E%3ClinearGradient id='g' x1='0' y1='0' x2='1' y2='1'%3E%3Cstop offset='0' stop-color='%233ecf8e'/%3E%3Cstop offset='1' stop-color='%235aa9ff'/%3E%3C/linearGradient%3E%3C/defs%3E%3Crect width='16' height='16' rx='3' fill='url(%23g)'/%3E%3C/svg%3E";
const html = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <meta name="color-scheme" content="dark" />
    <meta name="referrer" content="no-referrer" />
    <title>VPP operator console</title>
    <link rel="icon" href="${favicon}" />
    <link rel="stylesheet" href="${css}" />
    <script type="module" src="${js}"></script>
  </head>
  <body>
    <div id="app"></div>
    <noscript>The operator console needs JavaScript.</noscript>
  </body>
</html>
`;
await writeFile(join(dist, 'index.html'), html);

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const files = await Promise.all(entries.map((e) => (e.isDirectory() ? listFiles(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]))));
  return files.flat();
}

const files = [];
for (const file of (await listFiles(dist)).sort()) {
  const path = relative(dist, file).split(sep).join('/');
  if (path === 'manifest.json') continue;
  const content = await readFile(file);
  files.push({ path, bytes: (await stat(file)).size, sha256: createHash('sha256').update(content).digest('hex'), gzip: gzipSync(content, { level: 9 }).length });
}
await writeFile(join(dist, 'manifest.json'), `${JSON.stringify({ files: files.map(({ path, bytes, sha256 }) => ({ path, bytes, sha256 })) }, null, 2)}\n`);

const kib = (n: number) => `${(n / 1024).toFixed(1).padStart(7)} KiB`;
const served = files.filter((f) => !f.path.endsWith('.map') && !f.path.endsWith('.LEGAL.txt'));
console.log('dashboard/dist              raw        gzip');
for (const f of files) console.log(`  ${f.path.padEnd(26)}${kib(f.bytes)}${kib(f.gzip)}`);
const rawTotal = served.reduce((n, f) => n + f.bytes, 0);
const gzipTotal = served.reduce((n, f) => n + f.gzip, 0);
console.log(`  ${'loaded by the page'.padEnd(26)}${kib(rawTotal)}${kib(gzipTotal)}`);
if (gzipTotal > GZIP_BUDGET_BYTES) {
  console.error(`the page loads ${kib(gzipTotal)} gzipped, over the ${kib(GZIP_BUDGET_BYTES)} budget`);
  process.exit(1);
}
