/**
 * The one polling helper of the test suite: waits for a state the test cannot be told about by an
 * event (a counter in /status, a thread count, a flag on an object). Where there is an event (an
 * MQTT message, a log line, a notify datagram) wait on that instead: Subscriber.waitFor,
 * DaemonProcess.waitForLog, NotifySocket.waitFor.
 *
 * `fn` is called every `everyMs` until it returns something other than undefined, null or false;
 * that value is returned (so `() => cond || undefined` and `() => cond` both work). An error thrown
 * by `fn` fails the wait at once (a broken condition is not "not yet"): a condition that may
 * throw while the thing starts (a fetch before the port listens) catches that itself. After
 * `timeoutMs` the wait fails naming `what` (a function is asked then, so it can describe the last
 * state it saw).
 */
export async function waitUntil<T>(
  fn: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 15_000,
  what: string | (() => string) = 'condition',
  everyMs = 25,
): Promise<T> {
  const end = Date.now() + timeoutMs;
  const describe = () => (typeof what === 'function' ? what() : what);
  for (;;) {
    let v: T | undefined | null | false;
    try {
      v = await fn();
    } catch (err) {
      throw new Error(`waiting for ${describe()}: the condition threw: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`${describe()}: not met in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
