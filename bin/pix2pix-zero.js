#!/usr/bin/env node
// The command-line entry point; the program itself lives in lib/cli (compiled to dist/lib/cli).
import { main } from '../dist/lib/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`pix2pix-zero: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
