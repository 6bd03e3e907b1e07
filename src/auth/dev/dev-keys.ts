/**
 * DEVELOPMENT ONLY. DO NOT USE IN PRODUCTION.
 *
 * A fixed ES256 key pair for the built-in development issuer. The private key is public (it is
 * in this repository), so anyone can mint any token for this issuer: enable the dev issuer only
 * on a laptop or in tests, never in front of a real Prefect server.
 *
 * Generated once with jose.generateKeyPair('ES256'); kid = RFC 7638 thumbprint.
 */
export const DEV_PUBLIC_JWK = Object.freeze({
  kty: 'EC',
  x: 'GLWPm2QQ_DrHBc5OmTkZe8b9Rjit88VY298T4nHVQzc',
  y: 'Qwn0_Ye4U10WDLIie5LN1LhxM8QkOHCMuu774QHsoSs',
  crv: 'P-256',
  kid: 'oJY2vtlHEJZoZi_MSmPfDRIxOY68ggw0D3ukpUCKQes',
  alg: 'ES256',
  use: 'sig',
});

export const DEV_PRIVATE_JWK = Object.freeze({
  kty: 'EC',
  x: 'GLWPm2QQ_DrHBc5OmTkZe8b9Rjit88VY298T4nHVQzc',
  y: 'Qwn0_Ye4U10WDLIie5LN1LhxM8QkOHCMuu774QHsoSs',
  crv: 'P-256',
  d: 'zFdKmEGRT4FU2CxCz5KIIVTRfWSuJLwSj4TVzyFM0Wg',
  kid: 'oJY2vtlHEJZoZi_MSmPfDRIxOY68ggw0D3ukpUCKQes',
  alg: 'ES256',
  use: 'sig',
});
