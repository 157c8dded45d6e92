/**
 * Kind 4 of issue 18, documented options work and contradictions are refused: negative values parse without `=`,
 * a single-value option given twice, a malformed number or two sources of one thing are usage errors, not
 * silently resolved. (The ranges themselves are tested at both ends in option-ranges.spec.ts.)
 */
import * as path from 'node:path';
import { expect } from 'chai';
import { UsageError, intOption, numberOption, parseCommandLine } from '../lib/cli/command.js';
import { ROOT } from './helpers/tensors.js';
import { cli } from './helpers/cli.js';

const EXAMPLE = path.join(ROOT, 'assets', 'examples', 'example.png');

describe('command-line options: negatives, repeats, malformed numbers, contradictions (issue 18, kind 4)', function () {
  const options = { scale: { type: 'string' }, text: { type: 'string', multiple: true }, json: { type: 'boolean' } } as const;

  it('a negative number is the value of the option before it', function () {
    expect(parseCommandLine(['--scale', '-1'], options).values.scale).to.equal('-1');
    expect(parseCommandLine(['--scale', '-.5', 'pos'], options)).to.deep.include({ positionals: ['pos'] });
    expect(parseCommandLine(['--scale', '-2e3'], options).values.scale).to.equal('-2e3');
    expect(() => parseCommandLine(['--scale', '--json'], options)).to.throw(UsageError); // a flag is not a value
  });

  it('a single-value option given twice is refused; repeatable ones are not', function () {
    expect(() => parseCommandLine(['--scale', '1', '--scale=2'], options)).to.throw(UsageError, /--scale is given twice \('1' and '2'\)/);
    expect(parseCommandLine(['--text', 'a', '--text', 'b'], options).values.text).to.deep.equal(['a', 'b']);
  });

  it('numbers are decimal: no hex, binary, padding or Infinity', function () {
    for (const bad of ['0x3', '0b1', ' 5', '5 ', '1e3', '3.0', '', '+']) expect(() => intOption(bad, 'steps', 1, 1, 1000), bad).to.throw(UsageError);
    expect(intOption('-3', 'n', 0, -5, 5)).to.equal(-3);
    for (const bad of ['0x10', 'Infinity', '1e', '.', ' 1', '1,5']) expect(() => numberOption(bad, 'x', 0, -1e9, 1e9), bad).to.throw(UsageError);
    expect(numberOption('-.5', 'x', 0, -1, 1)).to.equal(-0.5);
    expect(numberOption('2e-3', 'x', 0, -1, 1)).to.equal(0.002);
  });

  it('the CLI refuses contradictions and repeats before any work', function () {
    const edit = (...more: string[]): string[] => ['edit', EXAMPLE, '--model', path.join(ROOT, 'no-such-model'), '--caption', 'a cat', '--out', 'never.png', ...more];
    const cases: [string[], RegExp][] = [
      [edit('--task', 'cat2dog', '--direction', 'd.safetensors'), /--task and --direction contradict each other/],
      [edit('--task', 'cat2dog', '--source', 'cat', '--target', 'dog'), /--task and --source contradict each other/],
      [edit('--task', 'cat2dog', '--target-sentences', 'b.txt'), /--task and --target-sentences/],
      [edit('--direction', 'd.safetensors', '--source', 'cat'), /--direction and --source/],
      [edit('--task', 'cat2dog', '--no-cache', '--cache-dir', 'c'), /--no-cache and --cache-dir/],
      [edit('--task', 'cat2dog', '--no-captioner', '--captioner', 'c'), /--no-captioner and --captioner/],
      [['edit', '--inversion', 'i.safetensors', '--task', 'cat2dog', '--out', 'x.png', '--size', '64'], /--inversion and --size do not go together/],
      [edit('--task', 'cat2dog', '--steps', '5', '--steps', '6'), /--steps is given twice/],
      [edit('--task', 'cat2dog', '--steps', '0x3'), /--steps must be an integer in \[1, 1000\], got '0x3'/],
      [edit('--task', 'cat2dog', '--direction-scale', '-11'), /--direction-scale must be a number in \[-10, 10\], got '-11'/],
      [edit('--task', 'cat2dog', '--guidance-scale', '-1'), /--guidance-scale must be a number in \[0, 100\], got '-1'/],
      [['direction', '--task', 'cat2dog', '--source', 'cat', '--out', 'd.safetensors'], /--task and --source/],
    ];
    for (const [args, message] of cases) {
      const r = cli(args);
      expect(r.code, `${args.join(' ')}: ${r.err}`).to.equal(2);
      expect(r.err, args.join(' ')).to.match(message);
    }
  });
});
