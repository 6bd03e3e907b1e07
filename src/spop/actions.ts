/** ACK actions (§1.9): what a NOTIFY handler returns. */
import type { VarScope } from './constants.js';
import type { VarValue } from './typed-data.js';

/**
 * `set`: SET-VAR `<scope>.<var-prefix>.<name>` (HAProxy drops the action when that whole string
 * exceeds 63 bytes; names are `[a-zA-Z0-9._]`). A `null` value makes HAProxy unset the var.
 * `unset`: UNSET-VAR.
 */
export type Action =
  | { readonly op: 'set'; readonly scope: VarScope; readonly name: string; readonly value: VarValue }
  | { readonly op: 'unset'; readonly scope: VarScope; readonly name: string };
