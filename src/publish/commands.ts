import type { z } from 'zod';
import { formatIssues } from '../config/format.js';
import type { Clock } from '../clock.js';
import { NAME_RE } from '../config/schema.js';
import { errorCode, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { RefusalLog } from '../refusal-log.js';
import type { MessageHandler } from './client.js';
import { commandResponse } from './payload.js';
import {
  COMMAND_NAMES,
  type CommandName,
  commandRequestSchemas,
  type ReloadOutcome,
  type RolloutState,
  type SnapshotResult,
} from './schemas.js';
import type { Topics } from './topics.js';

/**
 * Commands on <prefix>/<deviceId>/cmd/<name>, each answered once on cmd/<name>/response with the
 * request's id. Whatever arrives (too large, not JSON, unknown, invalid, a failing handler) gets
 * an error response and is logged; nothing here throws into the MQTT client. Retained messages
 * are ignored: a command left retained on the broker would otherwise run again at every connect.
 * Empty payloads are ignored too: they are how a retained message is cleared, and clearing a
 * retained `pause` must not pause every camera. A request is JSON, `{}` at least.
 */

export type { ReloadOutcome };

/** What the app provides for `reload` (the same path as SIGHUP). */
export interface Reloader {
  reload(): Promise<ReloadOutcome>;
}

export interface PauseResult {
  changed: string[];
  paused: string[];
}

export type Args<N extends CommandName> = z.output<(typeof commandRequestSchemas)[N]>;

/** The app's side of each command. Throw a CommandError to answer with a specific code. */
export interface CommandHandlers {
  snapshot(args: Args<'snapshot'>): Promise<SnapshotResult>;
  reload(): Promise<ReloadOutcome>;
  pause(camera: string | undefined): Promise<PauseResult>;
  resume(camera: string | undefined): Promise<PauseResult>;
  status(): unknown;
  /** cmd/model/*: the model rollout (src/rollout/); without it these answer UNAVAILABLE. */
  model?: ModelCommands;
}

export interface ModelCommands {
  install(args: Args<'model/install'>, requestId: string | number | null): Promise<RolloutState>;
  rollback(requestId: string | number | null, args?: Args<'model/rollback'>): Promise<RolloutState>;
  /** Stops the download (or unpack) of the install running now. */
  cancel(requestId: string | number | null): RolloutState;
}

export type CommandErrorCode =
  | 'BAD_JSON'
  | 'BAD_REQUEST'
  | 'TOO_LARGE'
  | 'UNKNOWN_COMMAND'
  | 'UNKNOWN_CAMERA'
  | 'NO_FRAME'
  | 'SNAPSHOTS_OFF'
  | 'RELOAD_REJECTED'
  | 'UNAVAILABLE'
  | 'FAILED'
  | 'BUSY'
  | 'MODEL_REJECTED'
  | 'NOTHING_TO_CANCEL';

/** Commands accepted at once (waiting for start-up, running, or their response being sent); more get BUSY. */
export const MAX_IN_FLIGHT = 8;
/** An error response lists at most this many problems, then "and N more". */
export const MAX_PROBLEMS = 10;
/** Each listed problem is cut to this many characters. */
const MAX_PROBLEM_CHARS = 200;

export class CommandError extends Error {
  readonly code: CommandErrorCode;
  readonly problems?: string[];
  constructor(code: CommandErrorCode, message: string, problems?: string[]) {
    super(message);
    this.name = 'CommandError';
    this.code = code;
    this.problems = problems;
  }
}

export interface CommandOptions {
  topics: Topics;
  deviceId: string;
  maxBytes: number;
  handlers: CommandHandlers;
  publish: (topic: string, payload: string) => Promise<void>;
  log: Logger;
  /** Requests wait for it (the app's start-up) before they run. */
  ready?: Promise<void>;
  /** Commands at once before BUSY (default MAX_IN_FLIGHT). */
  maxInFlight?: number;
  /** Paces the BUSY log lines. */
  clock?: Clock;
}

type RequestId = string | number | null;

export class CommandHandler {
  private readonly o: CommandOptions;
  private inFlight = 0;
  /** A flood answered BUSY is logged like refused HTTP requests: a few lines a second, then a count. */
  private readonly busyLog: RefusalLog;

  constructor(opts: CommandOptions) {
    this.o = opts;
    this.busyLog = new RefusalLog(opts.log, opts.clock, 10, 'command refused');
  }

  /** For MqttConnection.subscribe(topics.commandFilter, ...). */
  readonly onMessage: MessageHandler = (topic, payload, meta) => {
    void this.handle(topic, payload, meta.retain);
  };

  /** Resolves when the response has been handed to the MQTT client. */
  async handle(topic: string, payload: Buffer, retain = false): Promise<void> {
    // The command is what follows this device's own `<prefix>/<deviceId>/cmd/`: nothing else is ever taken.
    const own = this.o.topics.command('');
    if (!topic.startsWith(own)) {
      this.o.log.warn(
        { topic: topic.length > 200 ? `${topic.slice(0, 200)}...` : topic },
        "message outside this device's cmd/ topics ignored",
      );
      return;
    }
    const name = topic.slice(own.length);
    // Checked before anything is published: the response topic is built from the name, and a name
    // with an empty level (cmd/, cmd/model/), a wildcard or an over-long level has no valid one.
    if (!name.split('/').every((level) => NAME_RE.test(level))) {
      this.o.log.warn({ topic: topic.length > 200 ? `${topic.slice(0, 200)}...` : topic }, 'command ignored: not a command topic');
      return;
    }
    if (retain) {
      this.o.log.warn({ topic }, 'retained command ignored; clear it with an empty retained message');
      return;
    }
    if (payload.length === 0) {
      this.o.log.debug({ topic }, 'empty command payload ignored');
      return;
    }
    let requestId: RequestId = null;
    const busy = this.inFlight >= (this.o.maxInFlight ?? MAX_IN_FLIGHT);
    if (!busy) this.inFlight++;
    try {
      if (busy) {
        requestId = sniffId(payload);
        throw new CommandError('BUSY', `${this.o.maxInFlight ?? MAX_IN_FLIGHT} commands are being handled; try again`);
      }
      if (payload.length > this.o.maxBytes) {
        requestId = sniffId(payload);
        throw new CommandError('TOO_LARGE', `payload of ${payload.length} bytes is over commands.maxBytes (${this.o.maxBytes})`);
      }
      let body: unknown;
      try {
        body = JSON.parse(payload.toString('utf8'));
      } catch (err) {
        throw new CommandError('BAD_JSON', `payload is not JSON: ${errorMessage(err)}`);
      }
      requestId = readId(body);
      if (!isCommand(name)) throw new CommandError('UNKNOWN_COMMAND', `unknown command "${name}" (commands: ${COMMAND_NAMES.join(', ')})`);
      await this.o.ready;
      const result = await this.run(name, body, requestId);
      this.o.log.info({ command: name, requestId }, 'command done');
      await this.respond(name, requestId, { command: name, ok: true, result });
    } catch (err) {
      const code: CommandErrorCode = err instanceof CommandError ? err.code : 'FAILED';
      // Every handler's problems, bounded here once (new commands get it too).
      const problems = err instanceof CommandError && err.problems ? boundProblems(err.problems) : undefined;
      const message = clip(errorMessage(err), 1000);
      if (code === 'BUSY') this.busyLog.note('BUSY', { command: name, requestId });
      else
        this.o.log.warn(
          {
            command: name,
            requestId,
            code,
            err: message,
            ...(errorCode(err) && !(err instanceof CommandError) ? { cause: errorCode(err) } : {}),
          },
          'command failed',
        );
      await this.respond(name, requestId, {
        command: name,
        ok: false,
        error: { code, message, ...(problems?.length ? { problems } : {}) },
      });
    } finally {
      if (!busy) this.inFlight--;
    }
  }

  private async run(name: CommandName, body: unknown, requestId: RequestId): Promise<unknown> {
    const schema = commandRequestSchemas[name];
    const parsed = schema.safeParse(body);
    if (!parsed.success) {
      const problems = formatIssues(schema, body, parsed.error.issues);
      throw new CommandError('BAD_REQUEST', `invalid ${name} request: ${boundProblems(problems).join('; ')}`, problems);
    }
    const h = this.o.handlers;
    switch (name) {
      case 'snapshot':
        return h.snapshot(parsed.data as Args<'snapshot'>);
      case 'reload': {
        const outcome = await h.reload();
        if (!outcome.ok)
          throw new CommandError('RELOAD_REJECTED', 'the new config was rejected; the running config stays', outcome.problems);
        return outcome;
      }
      case 'pause':
        return h.pause((parsed.data as Args<'pause'>).camera);
      case 'resume':
        return h.resume((parsed.data as Args<'resume'>).camera);
      case 'status':
        return h.status();
      case 'model/install':
      case 'model/rollback':
      case 'model/cancel': {
        if (!h.model) throw new CommandError('UNAVAILABLE', 'model rollout is off (model.rollout.enabled: false)');
        if (name === 'model/cancel') return h.model.cancel(requestId);
        return name === 'model/install'
          ? h.model.install(parsed.data as Args<'model/install'>, requestId)
          : h.model.rollback(requestId, parsed.data as Args<'model/rollback'>);
      }
    }
  }

  private async respond(name: string, requestId: RequestId, body: Parameters<typeof commandResponse>[2]): Promise<void> {
    const msg = JSON.stringify(commandResponse(this.o.deviceId, requestId, body));
    await this.o.publish(this.o.topics.commandResponse(name), msg).catch((err: unknown) => {
      this.o.log.warn({ command: name, requestId, err: errorMessage(err) }, 'command response publish failed');
    });
  }
}

function isCommand(name: string): name is CommandName {
  return (COMMAND_NAMES as string[]).includes(name);
}

function validId(x: unknown): RequestId {
  if (typeof x === 'string' && x.length >= 1 && x.length <= 128) return x;
  if (typeof x === 'number' && Number.isSafeInteger(x)) return x;
  return null;
}

function readId(body: unknown): RequestId {
  return body !== null && typeof body === 'object' && !Array.isArray(body) ? validId((body as Record<string, unknown>).id) : null;
}

/** The id of a payload too large to parse, when it is a top-level key near the start (best effort). */
function sniffId(payload: Buffer): RequestId {
  const head = payload.subarray(0, 1024).toString('utf8');
  const m = /^\s*\{\s*"id"\s*:\s*("(?:[^"\\]|\\.){1,128}"|-?\d{1,15})\s*[,}]/.exec(head);
  if (!m) return null;
  try {
    return validId(JSON.parse(m[1]));
  } catch {
    return null;
  }
}

const clip = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max - 3)}...` : s);

/**
 * An answer is never much larger than the request allows: a request with a thousand unknown keys
 * gets the first few named, then "and N more" (the response and the log line stay small).
 */
export function boundProblems(problems: string[], max = MAX_PROBLEMS): string[] {
  const shown = problems.slice(0, max).map((p) => clip(p, MAX_PROBLEM_CHARS));
  return problems.length > max ? [...shown, `and ${problems.length - max} more`] : shown;
}
