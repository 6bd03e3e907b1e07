/**
 * Roles as bits. Built-in roles rank admin > developer > operator > worker > viewer, then custom
 * roles in declaration order. `implies` is transitive: admin implies every built-in role,
 * developer implies operator, worker and viewer, operator implies viewer (authz-reference 3.9).
 */
export const BUILTIN_ROLES = ['admin', 'developer', 'operator', 'worker', 'viewer'] as const;
export type BuiltinRole = (typeof BUILTIN_ROLES)[number];

/** Reported as `role` when a request without a token is allowed; never assignable. */
export const ANONYMOUS_ROLE = 'anonymous';

export const BUILTIN_IMPLIES: Readonly<Record<BuiltinRole, readonly BuiltinRole[]>> = {
  admin: ['developer', 'operator', 'worker', 'viewer'],
  developer: ['operator', 'worker', 'viewer'],
  operator: ['viewer'],
  worker: [],
  viewer: [],
};

/** Bits in a 32-bit integer, one per role. */
export const MAX_ROLES = 31;

export interface CustomRoleSpec {
  readonly implies: readonly string[];
}

export class RoleModel {
  /** Role names in rank order, highest first; index = bit position. */
  readonly names: readonly string[];
  private readonly bits: ReadonlyMap<string, number>;
  /** closure[i] = mask of role i and every role it implies. */
  private readonly closure: readonly number[];

  private constructor(names: string[], implies: Map<string, readonly string[]>) {
    this.names = names;
    const bits = new Map<string, number>();
    names.forEach((name, i) => {
      bits.set(name, i);
    });
    this.bits = bits;
    const closure = names.map((_, i) => 1 << i);
    for (let changed = true; changed; ) {
      changed = false;
      names.forEach((name, i) => {
        let mask = closure[i] as number;
        for (const implied of implies.get(name) ?? []) {
          const j = bits.get(implied);
          if (j !== undefined) mask |= closure[j] as number;
        }
        if (mask !== closure[i]) {
          closure[i] = mask;
          changed = true;
        }
      });
    }
    this.closure = closure;
  }

  /** Throws RangeError on too many roles; unknown names in `implies` must be checked by the caller. */
  static create(custom: Readonly<Record<string, CustomRoleSpec>> = {}): RoleModel {
    const names: string[] = [...BUILTIN_ROLES];
    const implies = new Map<string, readonly string[]>(Object.entries(BUILTIN_IMPLIES));
    for (const [name, spec] of Object.entries(custom)) {
      if (!names.includes(name)) names.push(name);
      implies.set(name, [...(implies.get(name) ?? []), ...spec.implies]);
    }
    if (names.length > MAX_ROLES) throw new RangeError(`at most ${MAX_ROLES} roles are supported`);
    return new RoleModel(names, implies);
  }

  has(name: string): boolean {
    return this.bits.has(name);
  }

  /** Mask of the named roles themselves (unknown names ignored). */
  directMask(roles: readonly string[]): number {
    let mask = 0;
    for (const role of roles) {
      const bit = this.bits.get(role);
      if (bit !== undefined) mask |= 1 << bit;
    }
    return mask;
  }

  /** Mask of the given roles and everything they imply. */
  effectiveMask(direct: number): number {
    let mask = 0;
    for (let i = 0; i < this.names.length; i++) if (direct & (1 << i)) mask |= this.closure[i] as number;
    return mask;
  }

  /** Highest-ranked held role that implies one of `required`, else the highest held role. */
  grantingRole(direct: number, required: number): string | null {
    if (required !== 0) {
      for (let i = 0; i < this.names.length; i++) {
        if (direct & (1 << i) && (this.closure[i] as number) & required) return this.names[i] as string;
      }
    }
    return this.highestRole(direct);
  }

  highestRole(direct: number): string | null {
    if (direct === 0) return null;
    for (let i = 0; i < this.names.length; i++) if (direct & (1 << i)) return this.names[i] as string;
    return null;
  }
}
