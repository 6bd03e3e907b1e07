import { constants, createHmac, type KeyObject, sign as nodeSign } from 'node:crypto';

/** A raw JWS signer for `alg` with node:crypto (ECDSA as IEEE P1363, PSS salt = hash length). */
export function signerFor(alg: string, key: KeyObject): (data: Buffer) => Buffer {
  const hash = alg.startsWith('Ed') ? null : `sha${alg.slice(2)}`;
  if (alg.startsWith('HS'))
    return (data) =>
      createHmac(hash as string, key)
        .update(data)
        .digest();
  if (alg.startsWith('PS'))
    return (data) =>
      nodeSign(hash, data, {
        key,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: Number(alg.slice(2)) / 8,
      });
  if (alg.startsWith('ES')) return (data) => nodeSign(hash, data, { key, dsaEncoding: 'ieee-p1363' });
  return (data) => nodeSign(hash, data, key);
}
