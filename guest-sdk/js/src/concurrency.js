// Global concurrency and rate limits of the workspace (Prefect's `concurrency` and
// `rate_limit`), held across every node of the server. Create a limit first
// (`weir gcl set db 2`); then `concurrency("db", () => query())` runs the function
// holding one slot of it, and `rateLimit("api")` waits until the limit's decaying
// slots let one more call through.

import { iface, isThenable, onHost } from "./host.js";

/** The slots could not be taken (a strict limit that does not exist, a timeout...). */
export class ConcurrencySlotAcquisitionError extends Error {}

/** The slots were not free within `timeoutSeconds`. */
export class AcquireConcurrencySlotTimeoutError extends ConcurrencySlotAcquisitionError {}

function request(names, { occupy = 1, timeoutSeconds, strict = false } = {}) {
  const list = typeof names === "string" ? [names] : [...names];
  if (!Number.isInteger(occupy) || occupy < 1) throw new RangeError(`occupy must be a positive integer, not ${occupy}`);
  return { names: list, occupy, timeoutSeconds: timeoutSeconds ?? undefined, strict: Boolean(strict) };
}

function refused(error) {
  const text = String(error?.payload ?? error?.message ?? error);
  return text.startsWith("timed out")
    ? new AcquireConcurrencySlotTimeoutError(text)
    : new ConcurrencySlotAcquisitionError(text);
}

function release(slots) {
  slots.release();
  if (typeof slots[Symbol.dispose] === "function") slots[Symbol.dispose]();
}

/**
 * Runs `fn` holding `occupy` slots of each named limit, waiting while they are full; the
 * slots come back when `fn` returns, throws, or its promise settles.
 */
export function concurrency(names, fn, options = {}) {
  if (!onHost()) return fn();
  let slots;
  try {
    slots = iface("concurrency").acquire(request(names, options));
  } catch (error) {
    throw refused(error);
  }
  let value;
  try {
    value = fn();
  } catch (error) {
    release(slots);
    throw error;
  }
  if (isThenable(value)) return value.finally(() => release(slots));
  release(slots);
  return value;
}

/** Waits until the named rate limits let `occupy` more calls through. */
export function rateLimit(names, options = {}) {
  if (!onHost()) return;
  try {
    iface("concurrency").rateLimit(request(names, options));
  } catch (error) {
    throw refused(error);
  }
}
