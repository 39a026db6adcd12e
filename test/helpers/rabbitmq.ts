import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitForPort } from './mosquitto.js';
import { freePort } from './ports.js';
import { findTool, needTool } from './tools.js';
import { waitUntil } from './wait.js';

/**
 * A RabbitMQ cluster on loopback, started by the test from Debian's rabbitmq-server with its MQTT
 * plugin (MQTT 3.1.1): every node with its own name, ports, config, data folder and log folder in
 * a temporary folder, one Erlang cookie (HOME/.erlang.cookie), and a private epmd on a free port
 * (ERL_EPMD_PORT), so a system RabbitMQ (the Debian package may start one) is neither used nor
 * touched, and stopping the cluster can stop its epmd too. The nodes run the scripts under
 * /usr/lib/rabbitmq/bin directly (the /usr/sbin wrappers switch to the rabbitmq user).
 */

export interface RabbitNode {
  name: string;
  mqttPort: number;
  url: string;
  /** Stops the node (SIGTERM: a clean shutdown) and waits for its exit. */
  stop(): Promise<void>;
  running(): boolean;
  log(): string;
}

export interface RabbitCluster {
  nodes: RabbitNode[];
  /** Stops every node still running, then the cluster's epmd. */
  stop(): Promise<void>;
}

const BIN = '/usr/lib/rabbitmq/bin';

export const rabbitmqServerPath = (): string | undefined => needTool('rabbitmq-server', 'rabbitmq-server', [`${BIN}/rabbitmq-server`]);

export async function startRabbitCluster(size = 2): Promise<RabbitCluster | undefined> {
  const server = rabbitmqServerPath();
  if (!server) return undefined;
  const ctl = findTool('rabbitmqctl', [`${BIN}/rabbitmqctl`])!;
  const dir = mkdtempSync(join(tmpdir(), 'rabbit-'));
  writeFileSync(join(dir, '.erlang.cookie'), `EDGEINFERD${Math.random().toString(36).slice(2).toUpperCase()}`);
  chmodSync(join(dir, '.erlang.cookie'), 0o400);
  writeFileSync(join(dir, 'enabled_plugins'), '[rabbitmq_mqtt].\n');
  const epmdPort = await freePort();
  const tag = Math.random().toString(36).slice(2, 8);
  const common = {
    HOME: dir,
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, 'enabled_plugins'),
    LANG: 'C.UTF-8',
  };

  const nodes: (RabbitNode & { env: NodeJS.ProcessEnv; start(): Promise<void> })[] = [];
  for (let i = 0; i < size; i++) {
    const name = `edgeinferd${tag}${i}@localhost`;
    const [amqpPort, distPort, mqttPort] = [await freePort(), await freePort(), await freePort()];
    const nodeDir = join(dir, `node${i}`);
    mkdirSync(nodeDir);
    const conf = join(nodeDir, 'rabbitmq.conf');
    writeFileSync(
      conf,
      [
        `listeners.tcp.default = 127.0.0.1:${amqpPort}`,
        `mqtt.listeners.tcp.default = 127.0.0.1:${mqttPort}`,
        'mqtt.allow_anonymous = true',
        'loopback_users = none',
        // The tests' brokers need no management or disk alarms on a shared CI disk.
        'disk_free_limit.absolute = 1MB',
      ].join('\n') + '\n',
    );
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...common,
      RABBITMQ_NODENAME: name,
      RABBITMQ_NODE_IP_ADDRESS: '127.0.0.1',
      RABBITMQ_NODE_PORT: String(amqpPort),
      RABBITMQ_DIST_PORT: String(distPort),
      RABBITMQ_CONFIG_FILE: conf,
      RABBITMQ_MNESIA_BASE: join(nodeDir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(nodeDir, 'log'),
      RABBITMQ_PID_FILE: join(nodeDir, 'pid'),
      RABBITMQ_ADVANCED_CONFIG_FILE: join(nodeDir, 'advanced.config'),
    };
    let proc: ChildProcess | undefined;
    let output = '';
    const running = () => !!proc && proc.exitCode === null && proc.signalCode === null;
    const node = {
      name,
      mqttPort,
      url: `mqtt://127.0.0.1:${mqttPort}`,
      env,
      running,
      log: () => output,
      async start() {
        proc = spawn(server, [], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
        proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
        await waitForPort(mqttPort, 60_000, () =>
          proc?.exitCode !== null ? `rabbitmq ${name} exited: ${output.slice(-3000)}` : undefined,
        );
      },
      async stop() {
        const p = proc;
        if (!p || !running()) return;
        await new Promise<void>((r) => {
          p.once('exit', () => r());
          p.kill('SIGTERM');
        });
      },
    };
    nodes.push(node);
  }
  const rabbitmqctl = (node: (typeof nodes)[number], ...args: string[]) =>
    new Promise<string>((resolve, reject) =>
      execFile(ctl, ['-n', node.name, ...args], { env: node.env, timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`rabbitmqctl ${args.join(' ')} on ${node.name}: ${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
      ),
    );
  const epmd = (arg: string) =>
    new Promise<string>((r) =>
      execFile(
        findTool('epmd', ['/usr/lib/erlang/bin/epmd']) ?? 'epmd',
        [arg],
        { env: { ...process.env, ERL_EPMD_PORT: String(epmdPort) } },
        (_e, out) => r(out ?? ''),
      ),
    );
  const stopAll = async () => {
    for (const n of nodes) await n.stop();
    // The epmd the first node started on our private port: it refuses -kill while a node is
    // registered, and a node leaves it a moment after its process exits.
    await waitUntil(async () => !/^name /m.test(await epmd('-names')), 10_000, 'the nodes to leave epmd', 100).catch(() => undefined);
    await epmd('-kill');
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    const [first, ...rest] = nodes;
    for (const n of rest) {
      await rabbitmqctl(n, 'stop_app');
      await rabbitmqctl(n, 'join_cluster', first.name);
      await rabbitmqctl(n, 'start_app');
      await waitForPort(n.mqttPort, 60_000);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { nodes, stop: stopAll };
}
