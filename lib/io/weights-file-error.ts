/** The error of a malformed weights file or folder, whatever its format. */

/**
 * An error in a weights file: the message names the file and, where there is one, the tensor
 * (`<file>: tensor '<name>': <message>`). The base of each format's own error class.
 */
export class WeightsFileError extends Error {
  constructor(
    readonly file: string,
    message: string,
    readonly tensor?: string,
  ) {
    super(`${file}: ${tensor !== undefined ? `tensor '${tensor}': ` : ''}${message}`);
    this.name = 'WeightsFileError';
  }
}
