import { type ClaimPath, type Claims, claimAt, claimStrings, compileClaimPath } from '../claims.js';

export const DEFAULT_ROLE_CLAIMS = [
  'groups',
  'roles',
  'realm_access.roles',
  'cognito:groups',
  'scope',
  'scp',
] as const;
export const DEFAULT_SPACE_DELIMITED = ['scope', 'scp'] as const;

export interface RoleMappingSpec {
  /** Claim names or dotted paths holding provider groups/roles/scopes. */
  readonly claims: readonly string[];
  /** Claims whose string value is a space-delimited list (OAuth `scope`). */
  readonly spaceDelimited: readonly string[];
  /** Provider value -> one or more of our roles. */
  readonly map: Readonly<Record<string, string | readonly string[]>>;
  /** Take claim values that are already role names as they are. */
  readonly passthrough: boolean;
  /** Roles every valid token from this issuer has. */
  readonly default: readonly string[];
}

/** Claims -> our role names, per issuer. Names unknown to the policy are dropped later. */
export class RoleMapper {
  private readonly spec: RoleMappingSpec;
  private readonly map: ReadonlyMap<string, readonly string[]>;
  private readonly paths: ReadonlyArray<readonly [ClaimPath, boolean]>;

  constructor(spec: RoleMappingSpec) {
    this.spec = spec;
    this.map = new Map(
      Object.entries(spec.map).map(([k, v]) => [k, typeof v === 'string' ? [v] : [...v]] as const),
    );
    const spaced = new Set(spec.spaceDelimited);
    this.paths = spec.claims.map((path) => [compileClaimPath(path), spaced.has(path)] as const);
  }

  roles(claims: Claims): string[] {
    const out = [...this.spec.default];
    for (const [path, spaced] of this.paths) {
      for (const value of claimStrings(claimAt(claims, path), spaced)) {
        const mapped = this.map.get(value);
        if (mapped !== undefined) for (const role of mapped) if (!out.includes(role)) out.push(role);
        if (this.spec.passthrough && !out.includes(value)) out.push(value);
      }
    }
    return out;
  }
}
