import { HealthServer, type HealthServerOptions } from '../../src/health/server.js';

/**
 * The real HTTP server on a free loopback port, healthy and ready, for tests of one route or one
 * limit; `opts` adds the logger, token, limits or CORS origins under test. Routes are added by
 * the test; start() is the test's to call.
 */
export function loopbackServer(opts: Omit<HealthServerOptions, 'host' | 'port' | 'source'>): HealthServer {
  return new HealthServer({
    host: '127.0.0.1',
    port: 0,
    source: { health: () => ({ ok: true }), ready: () => ({ ok: true, checks: {} }), status: () => ({}) },
    ...opts,
  });
}
