#!/usr/bin/env node
// Compiles the TypeScript of apps/ and libs/ (tests left out) into dist/ with SWC: decorator
// metadata on for Nest, the workspace's path aliases rewritten to relative requires. Running the
// compiled JavaScript keeps SWC's native compiler (about 80 MB) out of the registry's processes.
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'dist');
const tsconfig = JSON.parse(fs.readFileSync(path.join(ROOT, 'tsconfig.base.json'), 'utf8'));

/** Every source file the build compiles (not tests). */
function sources() {
  const out = [];
  for (const top of ['apps', 'libs']) {
    const walk = (dir) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) {
          if (e.name !== 'node_modules') walk(p);
        } else if (p.endsWith('.ts') && !/\.(spec|int-spec)\.ts$/.test(p) && p.includes(`${path.sep}src${path.sep}`)) {
          out.push(p);
        }
      }
    };
    walk(path.join(ROOT, top));
  }
  return out;
}

/** True when dist/ is older than a source file (or missing). */
function isStale() {
  let built;
  try {
    built = fs.statSync(path.join(OUT, '.built')).mtimeMs;
  } catch {
    return true;
  }
  const inputs = [...sources(), path.join(ROOT, 'tsconfig.base.json'), __filename];
  return inputs.some((f) => fs.statSync(f).mtimeMs > built);
}

function build() {
  const { transformFileSync } = require('@swc/core');
  const t0 = Date.now();
  fs.rmSync(OUT, { recursive: true, force: true });
  const files = sources();
  for (const file of files) {
    const rel = path.relative(ROOT, file);
    const target = path.join(OUT, rel.replace(/\.ts$/, '.js'));
    const { code, map } = transformFileSync(file, {
      filename: file,
      sourceMaps: true,
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        transform: { legacyDecorator: true, decoratorMetadata: true },
        target: 'es2022',
        baseUrl: ROOT,
        paths: tsconfig.compilerOptions.paths,
      },
      // Keep `import()` as is: PGlite is an ES module, loaded dynamically from CommonJS.
      module: { type: 'commonjs', ignoreDynamic: true },
    });
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, `${code}\n//# sourceMappingURL=${path.basename(target)}.map\n`);
    fs.writeFileSync(`${target}.map`, map);
  }
  fs.writeFileSync(path.join(OUT, '.built'), new Date().toISOString());
  console.error(`[build] ${files.length} files compiled into dist/ in ${Date.now() - t0} ms`);
}

/**
 * Builds unless dist/ is fresh, one process at a time (several registry processes may start at
 * once from a fresh checkout): the first takes dist.lock and builds, the others wait for it.
 */
function buildIfStale() {
  const lock = path.join(ROOT, 'dist.lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx'));
      break;
    } catch (e) {
      if (e.code !== 'EEXIST') throw e;
      let age = 0;
      try {
        age = Date.now() - fs.statSync(lock).mtimeMs;
      } catch {
        continue;
      }
      if (age > 60_000 || Date.now() > deadline) fs.rmSync(lock, { force: true }); // a builder died
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    if (isStale()) build();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

module.exports = { isStale, build, buildIfStale };
if (require.main === module) buildIfStale();
