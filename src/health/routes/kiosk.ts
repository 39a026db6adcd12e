import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../paths.js';
import type { Route } from '../server.js';

/**
 * `/kiosk/` (http.kiosk: true): the example kiosk page (examples/kiosk/: static HTML, CSS and JS),
 * read once when the server is built. Public like the status page (the files hold no data; the
 * page reads /events and /preview.mjpeg, which need the token when there is one: the page passes
 * its own `?token=` on). The Content-Security-Policy lets the page load only its own files and
 * talk only to this daemon, with images from here or `data:` (the heatmaps).
 */

export const KIOSK_DIR = join(packageRoot, 'examples', 'kiosk');

const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'kiosk.js': 'text/javascript; charset=utf-8',
  'kiosk.css': 'text/css; charset=utf-8',
};

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function kioskRoutes(dir = KIOSK_DIR): Route[] {
  const file = (name: string, path: string): Route => {
    const body = readFileSync(join(dir, name));
    return {
      method: 'GET',
      path,
      public: true,
      handler: (req, res) => {
        res.writeHead(200, {
          'Content-Type': FILES[name],
          'Content-Length': body.length,
          'Cache-Control': 'no-cache',
          'Content-Security-Policy': CSP,
          'X-Content-Type-Options': 'nosniff',
          'Referrer-Policy': 'no-referrer',
        });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
    };
  };
  return [
    {
      method: 'GET',
      path: '/kiosk',
      public: true,
      handler: (_req, res) => {
        res.writeHead(301, { Location: '/kiosk/', 'Content-Length': 0 });
        res.end();
      },
    },
    file('index.html', '/kiosk/'),
    ...Object.keys(FILES).map((name) => file(name, `/kiosk/${name}`)),
  ];
}
