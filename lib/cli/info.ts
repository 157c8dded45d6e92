/** `pix2pix-zero info [--model dir]`: the version, the backend, and a summary of a model (default: the shipped one). */
import { initBackend } from '../backend.js';
import { defaultModel, packageVersion } from '../paths.js';
import { inspectPath } from './inspect.js';
import { BACKEND_HELP, BACKEND_SYNOPSIS, COMMON_OPTIONS, type Command, EXIT, UsageError, backendOption } from './command.js';
import { defineCommand } from './run-command.js';

/** `pix2pix-zero info`. */
export const infoCommand: Command = defineCommand({
  name: 'info',
  summary: 'show the version, the active backend (its version and threads) and a summary of a model',
  usage: `Usage: pix2pix-zero info [--model <folder>] [${BACKEND_SYNOPSIS}] [--json] [--debug]

  --model    a Stable Diffusion pipeline folder, a BLIP folder or a component (default: the shipped model)
  ${BACKEND_HELP}
  --json     machine-readable output on stdout
  --debug    let native TensorFlow's own start-up log lines through`,
  options: { ...COMMON_OPTIONS, model: { type: 'string' } },
  async run({ values, positionals, io }) {
    if (positionals.length > 0) throw new UsageError(`info takes no positional arguments (got '${positionals[0]}')`);
    const backend = await initBackend(backendOption(values.backend, values.debug));
    const model = inspectPath(values.model ?? defaultModel());
    const summary = {
      version: packageVersion(),
      node: process.version,
      backend: { name: backend.name, provider: backend.provider, version: backend.version, threads: backend.threads, skipped: backend.skipped },
      model: {
        path: model.path,
        kind: model.kind,
        components: model.components.map((c) => ({ name: c.name, class: c.class, parameters: c.parameters, tensors: c.tensors?.length })),
      },
    };
    if (values.json) {
      io.out(JSON.stringify(summary, null, 2));
      return EXIT.ok;
    }
    const lines = [
      `pix2pix-zero ${summary.version} (Node ${summary.node})`,
      `backend: ${backend.name} (${backend.provider}), ${backend.version}, ${backend.threads} thread${backend.threads === 1 ? '' : 's'}` +
        (backend.skipped.length > 0 ? `; not available: ${backend.skipped.map((s) => s.name).join(', ')}` : ''),
      `model: ${model.path} (${model.kind})`,
      ...summary.model.components.map(
        (c) => `  ${c.name.padEnd(13)} ${(c.class ?? '').padEnd(28)} ${c.parameters !== undefined ? `${c.parameters.toLocaleString('en-US')} parameters` : ''}`.trimEnd(),
      ),
    ];
    io.out(lines.join('\n'));
    return EXIT.ok;
  },
});
