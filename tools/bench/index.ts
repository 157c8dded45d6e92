/**
 * The benchmarks: `npm run bench -- <name> [options]` (the script builds first, then runs
 * dist/tools/bench/index.js). Each sub-command prints a table and writes docs/bench/<name>.json.
 */
import * as tf from '@tensorflow/tfjs-core';
import { benchUnet } from './unet.js';

/** Sub-command name -> its entry point (taking the remaining arguments) and a one-line description. */
const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; about: string }> = {
  unet: {
    run: benchUnet,
    about: 'UNet forward vs forward + cross-attention loss gradient, fixture UNets and full-size SD 1.x blocks (--backend wasm|cpu, --only fixture|blocks|conv)',
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.about}`);
  return `usage: npm run bench -- <benchmark> [options]\n\nbenchmarks:\n${lines.join('\n')}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`unknown benchmark '${name}'\n\n${usage()}`);
    return 2;
  }
  tf.env().set('PROD', true);
  await command.run(rest);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  },
);
