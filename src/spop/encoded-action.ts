/**
 * SET-VAR actions encoded once (§1.9). A handler that sets the same few values on every ACK
 * (a reason, a role, a policy tag) can hand out {@link EncodedSetVar}s: they are ordinary
 * {@link Action}s, and the {@link FrameWriter} copies their bytes instead of encoding the name
 * and value again (a JS `charCodeAt` loop costs ~2.5 ns a char on the reference VM).
 */
import type { Action } from './actions.js';
import { ActionType, type VarScope } from './constants.js';
import { typedSize, type VarValue, writeTyped } from './typed-data.js';
import { checkScope, encodedVarName } from './var-name.js';

/** A `set` action with its wire bytes; immutable (the value is encoded at construction). */
export class EncodedSetVar {
  readonly op: 'set';
  readonly scope: VarScope;
  readonly name: string;
  readonly value: VarValue;
  /** `<SET-VAR:1><NB-ARGS=3:1><SCOPE:1><NAME:string><VALUE:typed-data>`. */
  readonly bytes: Uint8Array;

  /** Validates like the FrameWriter does: TypeError on a bad scope, name or value. */
  constructor(scope: VarScope, name: string, value: VarValue) {
    const s = checkScope(scope);
    const n = encodedVarName(name);
    const tmp = Buffer.allocUnsafe(3 + n.length + typedSize(value));
    tmp[0] = ActionType.SET_VAR;
    tmp[1] = 3;
    tmp[2] = s;
    n.copy(tmp, 3);
    const end = writeTyped(tmp, 3 + n.length, value);
    this.op = 'set';
    this.scope = scope;
    this.name = name;
    // A copy: Uint8Array values could be changed by the caller after encoding.
    this.value = value instanceof Uint8Array ? value.slice() : value;
    this.bytes = Uint8Array.prototype.slice.call(tmp, 0, end);
    Object.freeze(this);
  }
}

/** A `set` Action with the encoding done now: TypeError here rather than when the ACK is written. */
export function compileSetVar(scope: VarScope, name: string, value: VarValue): Action {
  return new EncodedSetVar(scope, name, value);
}

/** Values worth caching: plain scalars (anything else goes out as an ordinary action). */
export type CacheableValue = string | number | boolean;

const FRONT_SIZE = 16;

/**
 * One variable's SET-VAR per distinct value, encoded on first use. Up to `maxEntries` values
 * are kept (then new values get ordinary actions: still correct, just encoded per ACK).
 * Strings go through a direct-mapped front indexed by length, where an `===` on the same
 * string object is a pointer compare; other values and collisions through a Map.
 */
export class SetVarCache {
  readonly scope: VarScope;
  readonly name: string;
  private readonly maxEntries: number;
  private readonly map: Map<CacheableValue, EncodedSetVar>;
  private readonly frontKeys: (string | null)[];
  private readonly frontVals: (EncodedSetVar | null)[];

  constructor(scope: VarScope, name: string, maxEntries = 1024) {
    checkScope(scope);
    encodedVarName(name);
    this.scope = scope;
    this.name = name;
    this.maxEntries = maxEntries;
    this.map = new Map();
    this.frontKeys = new Array<string | null>(FRONT_SIZE).fill(null);
    this.frontVals = new Array<EncodedSetVar | null>(FRONT_SIZE).fill(null);
  }

  /** The SET-VAR of `value` (an {@link EncodedSetVar} when cached). */
  action(value: CacheableValue): Action {
    if (typeof value === 'string') {
      const slot = value.length & (FRONT_SIZE - 1);
      if (this.frontKeys[slot] === value) return this.frontVals[slot]!;
      const a = this.lookup(value);
      if (a instanceof EncodedSetVar) {
        this.frontKeys[slot] = value;
        this.frontVals[slot] = a;
      }
      return a;
    }
    return this.lookup(value);
  }

  private lookup(value: CacheableValue): Action {
    let a = this.map.get(value);
    if (a !== undefined) return a;
    if ((typeof value === 'number' && !Number.isSafeInteger(value)) || this.map.size >= this.maxEntries) {
      return { op: 'set', scope: this.scope, name: this.name, value };
    }
    a = new EncodedSetVar(this.scope, this.name, value);
    this.map.set(value, a);
    return a;
  }
}

/**
 * A whole ACK's action list, encoded once: a handler that gives many NOTIFYs the same answer
 * (one decision for a cached token and route) returns the same ActionList, and the
 * FrameWriter copies its bytes into each ACK instead of walking the actions. Build it with
 * `compileActions` (frame-writer.ts), which validates like an ordinary ACK.
 */
export class ActionList {
  readonly actions: readonly Action[];
  /** The actions' wire bytes, back to back (§1.9). */
  readonly bytes: Uint8Array;

  constructor(actions: readonly Action[], bytes: Uint8Array) {
    this.actions = Object.freeze([...actions]);
    this.bytes = bytes;
    Object.freeze(this);
  }
}
