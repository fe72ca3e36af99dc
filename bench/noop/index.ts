import type { HttpFunction } from '@google-cloud/functions-framework';

/**
 * The baseline: a Functions Framework `http` function that does nothing but answer JSON. Run with
 * `--source=dist/bench/noop --target=noop`; it imports nothing at run time.
 */
export const noop: HttpFunction = (_req, res) => {
  res.status(200).json({ outcome: 'noop' });
};
