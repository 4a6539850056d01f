#!/usr/bin/env -S node --max-semi-space-size=16
// The V8 flag halves the young generation (16 MB semi-spaces instead of 32): the same
// speed and about 100 MB less memory under image load (bench/PROFILE.md). The npm
// scripts and the benchmark start the gateway with the same flag.
// imagegate runs its TypeScript sources directly, which needs Node 24 or later.
const major = Number(process.versions.node.split(".")[0]);
if (major < 24) {
  process.stderr.write(
    `imagegate needs Node.js 24 or later (this is ${process.version}). Run it through npm ` +
      "(`npm start -- --config FILE`), which uses the Node 24 installed by `npm ci`.\n",
  );
  process.exit(1);
}
await import("../src/cli.ts");
