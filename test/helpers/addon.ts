import { native } from '../../src/native';
import { requireOrSkip } from './require';

/** The addon, or a printed skip (a failure under AFFINITYD_REQUIRE_ALL=1). */
export function addonOrSkip(ctx: Mocha.Context): ReturnType<typeof native> {
  let why = '';
  try {
    return native();
  } catch (e) {
    why = (e as Error).message;
  }
  requireOrSkip(ctx, false, `native addon not built: ${why}`);
  throw new Error('unreachable');
}
