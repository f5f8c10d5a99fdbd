/**
 * What a client connection still owes, kept on the socket under symbols. Node emits an upgrade and a
 * parse error as soon as it parses them, even while earlier pipelined responses are still being
 * written: anything we write then must wait for those, or it would overtake them.
 */

const kClosing = Symbol('sidecar.answeredWithClose');
const kOwed = Symbol('sidecar.responsesOwed');
const kWhenSettled = Symbol('sidecar.whenSettled');
type TrackedSocket = object & { [kClosing]?: true; [kOwed]?: number; [kWhenSettled]?: () => void };

/** We answered with `Connection: close`: requests pipelined behind that answer are not ours to serve. */
export function markAnsweredWithClose(socket: object): void {
  (socket as TrackedSocket)[kClosing] = true;
}

export function answeredWithClose(socket: object): boolean {
  return (socket as TrackedSocket)[kClosing] === true;
}

export function responseOwed(socket: object): void {
  const s = socket as TrackedSocket;
  s[kOwed] = (s[kOwed] ?? 0) + 1;
}

export function responseDone(socket: object): void {
  const s = socket as TrackedSocket;
  const left = (s[kOwed] ?? 1) - 1;
  s[kOwed] = left;
  const then = s[kWhenSettled];
  if (left === 0 && then !== undefined) {
    s[kWhenSettled] = undefined;
    then();
  }
}

export function hasResponsesOwed(socket: object): boolean {
  return ((socket as TrackedSocket)[kOwed] ?? 0) > 0;
}

/** Run `fn` once every response owed on `socket` has been written (at once if none is). */
export function whenSettled(socket: object, fn: () => void): void {
  const s = socket as TrackedSocket;
  if (!s[kOwed]) fn();
  else s[kWhenSettled] = fn;
}

/**
 * The 'error' listener of a socket Node has handed over (an upgrade, CONNECT): Node detaches its
 * own error handling from those, and an unhandled 'error' would crash the process.
 */
export function destroyOnError(this: { destroy(): void }): void {
  this.destroy();
}
