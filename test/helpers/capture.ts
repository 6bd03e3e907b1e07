/**
 * Runs `fn` with `process.stdout` or `process.stderr` writes collected instead of printed, for
 * tests that call the CLI's `main()` in process. The stream is restored however `fn` ends.
 *
 * @module
 */
export async function capture<T>(
  stream: 'stdout' | 'stderr',
  fn: () => Promise<T>,
): Promise<{ value: T; text: string }> {
  const target = process[stream];
  const write = target.write.bind(target);
  let text = '';
  target.write = ((chunk: string | Uint8Array) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return true;
  }) as typeof target.write;
  try {
    return { value: await fn(), text };
  } finally {
    target.write = write;
  }
}
