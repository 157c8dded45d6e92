/** The progress of a long call, as every layer reports it (a conversion, an inversion, a caption, a CLI bar). */

/** Progress of a long call: `step` of `total` done in `phase`. */
export interface ProgressEvent {
  /** e.g. `caption`, `direction`, `inversion`, `edit`, `decode`, or a converted component's folder. */
  readonly phase: string;
  readonly step: number;
  readonly total: number;
}
