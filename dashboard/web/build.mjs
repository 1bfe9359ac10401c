// Builds the dashboard's embedded assets into dist/: src/app.js with uPlot
// and the styles bundled and minified by esbuild, and the icon copied. The
// pages (src/*.html) are embedded as they are. dist/ is committed, so
// `go build` needs no Node.js.
//
//   node build.mjs           write dist/
//   node build.mjs --check   fail if dist/ differs from what its sources build
import { build } from 'esbuild';
import { readFile, readdir, writeFile, mkdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');
const copied = ['icon.svg'];

async function outputs() {
  const res = await build({
    entryPoints: [join(src, 'app.js')],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['es2020'],
    charset: 'utf8',
    legalComments: 'eof',
    outdir: dist,
    write: false,
    logLevel: 'error',
  });
  const files = new Map(res.outputFiles.map((f) => [basename(f.path), Buffer.from(f.contents)]));
  for (const name of copied) files.set(name, await readFile(join(src, name)));
  return files;
}

const files = await outputs();
if (process.argv.includes('--check')) {
  const have = new Set(await readdir(dist).catch(() => []));
  const stale = [];
  for (const [name, data] of files) {
    const cur = have.has(name) ? await readFile(join(dist, name)) : null;
    if (!cur || !cur.equals(data)) stale.push(name);
    have.delete(name);
  }
  stale.push(...[...have].map((n) => `${n} (not built from src)`));
  if (stale.length) {
    console.error(`dashboard/web/dist does not match its sources: ${stale.join(', ')}\nrun: cd dashboard/web && npm ci && npm run build, then commit dist/`);
    process.exit(1);
  }
  console.log(`dashboard/web/dist matches its sources (${files.size} files)`);
} else {
  await rm(dist, { recursive: true, force: true });
  await mkdir(dist, { recursive: true });
  for (const [name, data] of files) await writeFile(join(dist, name), data);
  console.log(`built ${[...files.keys()].join(', ')} into dashboard/web/dist`);
}
