import type { ConfigChange } from './config/reload.js';
import type { Config } from './config/schema.js';

/**
 * A part of the daemon with a lifecycle. The composition root (src/app.ts) starts components in
 * dependency order and stops them in reverse. start() and stop() are idempotent; stop() may come
 * while start() is still running (a SIGTERM during a model load) and must then undo what start()
 * did, or leave it to the stop() that follows once start() has returned.
 */
export interface Component {
  readonly name: string;
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/**
 * A component that takes some config keys live (SIGHUP, the reload command). It declares the keys
 * (patterns: `*` is one key, a trailing `*` any keys below) and receives its own slice of the new
 * config with the changes that concern it. Keys no component declares need a restart, by
 * construction: there is no other list of live keys.
 */
export interface LiveReloadable<S = unknown> {
  readonly name: string;
  readonly liveKeys: readonly string[];
  /** This component's slice of a config. */
  slice(config: Config): S;
  /**
   * Applies the new slice. `changes` are the changed keys under its liveKeys (possibly none: a
   * component may still look, as the model service checks whether the package on disk changed).
   * Returns the changes it could not apply, with why; the rest count as applied.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: void lets a component that never refuses declare apply(): void
  apply(slice: S, changes: ConfigChange[]): void | ReloadRefusal | Promise<void | ReloadRefusal>;
}

export interface ReloadRefusal {
  refused: ConfigChange[];
  error: string;
}
