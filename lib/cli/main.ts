/**
 * The `pix2pix-zero` program: dispatches to one command per file. Errors print as one line on stderr (with the
 * stack only under `--debug`; see run-command.ts); exit codes: 0 success, 1 failure, 2 bad command line.
 */
import * as tf from '@tensorflow/tfjs-core';
import { packageVersion } from '../paths.js';
import { type CliIO, type Command, EXIT } from './command.js';
import { infoCommand } from './info.js';
import { inspectCommand } from './inspect.js';
import { embedCommand } from './embed.js';
import { editCommand } from './edit.js';
import { invertCommand } from './invert.js';
import { directionCommand } from './direction.js';
import { captionCommand } from './caption.js';
import { convertCommand } from './convert.js';
import { sentencesCommand } from './sentences.js';
import { serveCommand } from './serve.js';
import { workerCommand } from './worker.js';

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [editCommand, invertCommand, directionCommand, sentencesCommand, captionCommand, embedCommand, convertCommand, serveCommand, workerCommand, infoCommand, inspectCommand];

const processIO: CliIO = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  errRaw: (text) => process.stderr.write(text),
  isTTY: process.stderr.isTTY === true,
};

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `pix2pix-zero ${packageVersion()}: zero-shot image-to-image editing with Stable Diffusion on TensorFlow.js`,
    '',
    'Usage: pix2pix-zero <command> [options]   (pix2pix-zero <command> --help for its options)',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join('\n');
}

/** Runs the program with `argv` (without `node` and the script); resolves to the exit code. */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  tf.env().set('PROD', true);
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(help());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version' || name === '-v') {
    io.out(packageVersion());
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    io.err(`pix2pix-zero: unknown command '${name}'. Commands: ${COMMANDS.map((c) => c.name).join(', ')}`);
    return EXIT.usage;
  }
  return command.run(rest, io);
}
