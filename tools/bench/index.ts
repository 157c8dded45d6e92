/**
 * The benchmarks: `npm run bench -- <name> [options]` (the script builds first, then runs
 * dist/tools/bench/index.js). Each sub-command prints a table and writes docs/bench/<name>.json; with no name,
 * the default suite runs (see SUITE). docs/benchmarks.md describes them and quotes the records.
 */
import * as tf from '@tensorflow/tfjs-core';
import { installedBackends } from '../../lib/backend.js';
import { hasReferencePython, NO_REFERENCE_PYTHON } from './harness.js';
import { benchCommand } from './command.js';
import { benchLoad } from './load.js';
import { benchPipeline } from './pipeline.js';
import { QUICK_CASES, benchUnet } from './unet.js';

/** Sub-command name -> its entry point (taking the remaining arguments) and a one-line description. */
const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; about: string }> = {
  pipeline: {
    run: benchPipeline,
    about: 'our edit end to end and per phase vs diffusers StableDiffusionPix2PixZeroPipeline (torch 1 and 2 threads) on tiny-sd, same inputs and settings; peak memory; edited-latents agreement (--backend tensorflow|wasm|cpu, --steps N, --size N, --threads 1,2, --reg-steps N, --full-size: the full-size SD 1.x subject and BLIP base at 512 px, --no-reference)',
  },
  command: {
    run: benchCommand,
    about: 'a whole `pix2pix-zero edit` with BLIP on the full-size SD 1.x subject vs the same edit in diffusers, each a fresh process under /usr/bin/time -v: wall time, max RSS, latents agreement (--subject sd1|sd2, --steps 2, --reg-steps 0, --size 512, --backend tensorflow, --no-reference)',
  },
  load: {
    run: benchLoad,
    about: 'loading one full-size SD 1.x component (the UNet by default) in a fresh process: time, weights, peak RSS as a ratio to them (--backend tensorflow, --component unet|vae|text_encoder)',
  },
  unet: {
    run: benchUnet,
    about: `UNet forward vs forward + cross-attention loss gradient, fixture UNets and full-size SD 1.x blocks, the blocks also in PyTorch (--backend tensorflow|wasm|cpu, --only <case,...>, --no-reference)`,
  },
};

/**
 * The default suite (`npm run bench` with no argument), each step a sub-command and its arguments: wasm, and the
 * tensorflow backend too when it is installed.
 */
const SUITE: [string, string[]][] = [
  ['pipeline', []],
  ['unet', ['--backend', 'wasm', '--only', QUICK_CASES.join(',')]],
  ...(installedBackends().includes('tensorflow')
    ? ([
        ['pipeline', ['--backend', 'tensorflow']],
        ['unet', ['--backend', 'tensorflow', '--only', QUICK_CASES.join(',')]],
      ] as [string, string[]][])
    : []),
];

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.about}`);
  const suite = SUITE.map(([n, a]) => `  npm run bench -- ${[n, ...a].join(' ')}`).join('\n');
  return `usage: npm run bench [-- <benchmark> [options]]\n\nbenchmarks:\n${lines.join('\n')}\n\nwith no benchmark, the default suite runs:\n${suite}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--help' || name === '-h') {
    console.log(usage());
    return 0;
  }
  tf.env().set('PROD', true);
  if (name === undefined) {
    if (!hasReferencePython()) console.error(`note: ${NO_REFERENCE_PYTHON}`);
    for (const [step, args] of SUITE) {
      console.log(`\n=== npm run bench -- ${[step, ...args].join(' ')}\n`);
      await COMMANDS[step]!.run(args);
    }
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`unknown benchmark '${name}'\n\n${usage()}`);
    return 2;
  }
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
