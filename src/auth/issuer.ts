import type { JWTVerifyOptions } from 'jose';
import type { IssuerConfig } from './issuer-config.js';
import { type KeySource, LocalKeySource, SecretKeySource } from './key-source.js';
import { RemoteKeySource, type RemoteKeySourceDeps } from './remote-key-source.js';
import { RoleMapper } from './roles.js';

/** An issuer ready to verify: its config, key source, role mapping and jose options. */
export interface CompiledIssuer {
  readonly config: IssuerConfig;
  readonly id: string;
  readonly iss: string;
  readonly keys: KeySource;
  readonly roles: RoleMapper;
  readonly algorithms: ReadonlySet<string>;
  readonly critical: ReadonlySet<string>;
  readonly toleranceSeconds: number;
  /** Everything but `currentDate`, which comes from the engine clock per call. */
  readonly verifyOptions: Readonly<JWTVerifyOptions>;
}

export function keySourceFor(issuer: IssuerConfig, deps: RemoteKeySourceDeps): KeySource {
  const keys = issuer.keys;
  switch (keys.type) {
    case 'oidc':
    case 'jwks-url':
      return new RemoteKeySource(issuer, deps);
    case 'jwks-file':
      return LocalKeySource.fromFile(keys.path, issuer.id);
    case 'jwks':
      return new LocalKeySource('jwks', keys.jwks as never);
    case 'secret':
      return new SecretKeySource(issuer);
  }
}

export function compileIssuer(config: IssuerConfig, deps: RemoteKeySourceDeps): CompiledIssuer {
  const verifyOptions: JWTVerifyOptions = {
    algorithms: [...config.algorithms],
    issuer: config.issuer,
    audience: [...config.audiences],
    clockTolerance: config.clockToleranceSeconds,
    // jose does not require exp unless asked (authz-reference 2.4); we always do.
    requiredClaims: ['exp', ...config.requiredClaims.filter((c) => c !== 'exp')],
    crit: Object.fromEntries(config.critical.map((name) => [name, true])),
    ...(config.maxTokenAgeSeconds === undefined ? {} : { maxTokenAge: config.maxTokenAgeSeconds }),
    ...(config.typ === undefined ? {} : { typ: config.typ }),
  };
  return {
    config,
    id: config.id,
    iss: config.issuer,
    keys: keySourceFor(config, deps),
    roles: new RoleMapper(config.roles),
    algorithms: new Set(config.algorithms),
    critical: new Set(config.critical),
    toleranceSeconds: config.clockToleranceSeconds,
    verifyOptions,
  };
}
