/**
 * The value check every artefact and cache entry passes before it is written and after it is read: no NaN, no
 * infinity, and (where a bound is given) no magnitude no valid tensor of its kind reaches, such as a bit-flipped
 * 1e30. Errors name the file or the tensor.
 */

/**
 * Throws unless every value is finite and, with `maxAbs`, at most `maxAbs` in magnitude. `what` names the tensor
 * and its file in the error ("x.safetensors: latent").
 */
export function assertFiniteValues(data: ArrayLike<number>, what: string, maxAbs = Infinity): void {
  let bad = 0;
  let first = -1;
  let largest = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!Number.isFinite(v)) {
      bad++;
      if (first < 0) first = i;
    } else if (Math.abs(v) > largest) {
      largest = Math.abs(v);
    }
  }
  if (bad > 0) throw new Error(`${what} has ${bad} non-finite value${bad === 1 ? '' : 's'} (NaN or infinity; the first at index ${first})`);
  if (largest > maxAbs) throw new Error(`${what} has a value of magnitude ${largest.toExponential(2)}, beyond any valid one (at most ${maxAbs})`);
}
