// Run by `weir build` for a JavaScript or TypeScript file of flows: bundles the
// generated entry module (the SDK, the user's file and what it imports) with esbuild,
// then makes a component of the bundle with componentize-js. Arguments: the entry
// module, the component to write, the WIT directory, the SDK's directory (where `weir`
// is found). Errors go to stderr, prefixed with "weir build:" where `weir build` words
// them for the user.
import { build } from "esbuild";
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";

const [entry, output, witPath, sdkDir] = process.argv.slice(2);
const bundle = join(dirname(entry), "bundle.js");
try {
  await build({
    entryPoints: [entry],
    outfile: bundle,
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    mainFields: ["module", "main"],
    conditions: ["import", "default"],
    external: ["weir:flow/*"],
    nodePaths: [sdkDir],
    logLevel: "silent",
    legalComments: "none",
  });
} catch (error) {
  for (const e of error.errors ?? []) {
    const where = e.location ? `${e.location.file}:${e.location.line}:${e.location.column + 1}: ` : "";
    const line = e.location?.lineText ? `\n    ${e.location.lineText}` : "";
    process.stderr.write(`weir build: bundle: ${where}${e.text}${line}\n`);
  }
  if (!error.errors) process.stderr.write(`weir build: bundle: ${error.message}\n`);
  process.exit(2);
}
try {
  const { component } = await componentize({
    sourcePath: bundle,
    witPath,
    worldName: "component",
    disableFeatures: ["fetch-event"],
  });
  await writeFile(output, component);
} catch (error) {
  process.stderr.write(`weir build: componentize: ${error?.stack ?? error}\n`);
  process.exit(3);
}
