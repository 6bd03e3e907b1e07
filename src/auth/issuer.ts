import type { JWTVerifyOptions } from 'jose';
import type { IssuerConfig } from './issuer-config.js';
import { type KeySource, LocalKeySource, SecretKeySource } from './keys/key-source.js';
import { PemKeySource } from './keys/pem-key-source.js';
import { RemoteKeySource, type RemoteKeySourceDeps } from './keys/remote-key-source.js';
import { RoleMapper } from './policy/role-mapping.js';
import { IssuerChecks } from './verify/issuer-checks.js';

export interface KeySourceDeps extends RemoteKeySourceDeps {
  /** A configured set (jwks, jwks-file) may hold no usable key (config `allowNoKeys`). */
  readonly allowNoKeys?: boolean;
}

export function keySourceFor(issuer: IssuerConfig, deps: KeySourceDeps): KeySource {
  const keys = issuer.keys;
  switch (keys.type) {
    case 'oidc':
    case 'jwks-url':
      return new RemoteKeySource(issuer, deps);
    case 'jwks-file':
      return LocalKeySource.fromFile(keys.path, issuer, deps);
    case 'jwks':
      return new LocalKeySource('jwks', keys.jwks as never, issuer, deps);
    case 'secret':
      return new SecretKeySource(issuer);
    case 'pem-url':
      return new PemKeySource(issuer, deps);
  }
}

/** An issuer ready to verify: its config, key source, role mapping and jose options. */
export class CompiledIssuer {
  readonly config: IssuerConfig;
  readonly id: string;
  readonly iss: string;
  /** Every exact `iss` routed here: the issuer and its aliases. */
  readonly isses: readonly string[];
  readonly keys: KeySource;
  /** Checks after signature and standard claims (verify/issuer-checks.ts). */
  readonly checks: IssuerChecks;
  readonly roles: RoleMapper;
  readonly toleranceSeconds: number;
  private readonly algorithms: string[];
  private readonly audience: string[];
  private readonly requiredClaims: string[];
  private readonly crit: Record<string, boolean>;
  private optionsSecond = Number.NaN;
  private options: JWTVerifyOptions = {};

  constructor(config: IssuerConfig, deps: KeySourceDeps) {
    this.config = config;
    this.id = config.id;
    this.iss = config.issuer;
    this.isses = [config.issuer, ...config.issuerAliases];
    this.checks = new IssuerChecks(config);
    this.keys = keySourceFor(config, deps);
    this.roles = new RoleMapper(config.roles);
    this.toleranceSeconds = config.clockToleranceSeconds;
    this.algorithms = [...config.algorithms];
    // Another audience claim (Cognito's client_id) is checked by IssuerChecks, not by jose.
    this.audience = config.audienceClaim === 'aud' ? [...config.audiences] : [];
    // jose does not require exp unless asked (authz-reference 2.4); we always do.
    this.requiredClaims = ['exp', ...config.requiredClaims.filter((c) => c !== 'exp')];
    this.crit = Object.fromEntries(config.critical.map((name) => [name, true]));
  }

  /**
   * jwtVerify options for the clock reading `nowMs`. jose compares claims in whole seconds
   * (floor of currentDate), so one options object serves every verification within a second;
   * building it per call cost more than the rest of our per-token work.
   */
  optionsAt(nowMs: number): JWTVerifyOptions {
    const second = Math.floor(nowMs / 1000);
    if (second !== this.optionsSecond) {
      const c = this.config;
      this.options = {
        algorithms: this.algorithms,
        issuer: this.isses.length === 1 ? this.iss : [...this.isses],
        ...(this.audience.length === 0 ? {} : { audience: this.audience }),
        clockTolerance: this.toleranceSeconds,
        requiredClaims: this.requiredClaims,
        crit: this.crit,
        currentDate: new Date(second * 1000),
        ...(c.maxTokenAgeSeconds === undefined ? {} : { maxTokenAge: c.maxTokenAgeSeconds }),
        ...(c.typ === undefined ? {} : { typ: c.typ }),
      };
      this.optionsSecond = second;
    }
    return this.options;
  }
}
