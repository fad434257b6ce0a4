// Builds web/lib/facelift_splat_viewer.mjs (Spark + the parts of three.js it uses, one minified ES module with
// Spark's WASM and sort worker inlined) and copies the licence of every npm package bundled into it next to it.
// Run from web_src/:  npm ci && npm run build
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";

const OUT_DIR = "../web/lib";
const OUT = `${OUT_DIR}/facelift_splat_viewer.mjs`;
const ALLOWED_LICENCES = new Set(["MIT"]);
mkdirSync(OUT_DIR, { recursive: true });

const result = await build({
  entryPoints: ["src/splat_viewer.js"],
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "none", // the licences ship as separate files beside the bundle (below)
  metafile: true,
  outfile: OUT,
  logLevel: "info",
});

// Every npm package that contributed bytes to the bundle: check its licence, copy its LICENSE file.
const packages = new Set();
for (const [input, info] of Object.entries(Object.values(result.metafile.outputs)[0].inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m && info.bytesInOutput > 0) packages.add(m[1]);
}
// Packages that a bundled package's own dist already inlines (Spark's dist carries fflate): from its source map.
for (const name of [...packages]) {
  const p = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
  const map = p.module && `node_modules/${name}/${p.module}.map`;
  if (!map || !existsSync(map)) continue;
  for (const src of JSON.parse(readFileSync(map, "utf8")).sources) {
    const m = src.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (m) packages.add(m[1]);
  }
}
const notice = [];
for (const name of [...packages].sort()) {
  const p = JSON.parse(readFileSync(`node_modules/${name}/package.json`, "utf8"));
  if (!ALLOWED_LICENCES.has(p.license)) throw new Error(`${name}: licence ${p.license} is not in ${[...ALLOWED_LICENCES]}`);
  const file = `LICENSE.${name.replace(/^@[^/]+\//, "")}.txt`;
  copyFileSync(`node_modules/${name}/LICENSE`, `${OUT_DIR}/${file}`);
  notice.push(`${name} ${p.version} (${p.license}): ${file}`);
}
writeFileSync(`${OUT_DIR}/THIRD_PARTY.txt`,
  "web/lib/facelift_splat_viewer.mjs bundles these npm packages (built by web_src/build.mjs):\n" +
  notice.join("\n") + "\n");
console.log(notice.join("\n"));
console.log(`${OUT}: ${(statSync(OUT).size / 1024).toFixed(0)} KiB`);
