import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium (the `chromium` package .ci/run installs). */
export const CHROMIUM = '/usr/bin/chromium';

/** Headless, and no background traffic: this machine's closed network refuses it, many times over. */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Debian's /usr/bin/chromium, headless, driven by playwright-core (no browser download), with a
 * fresh profile (playwright makes a new temporary one per launch: it refuses --user-data-dir in
 * args) and no background traffic. `hostRules`: Chromium's --host-resolver-rules, e.g.
 * "MAP rebind.test 127.0.0.1" to give a page a name that resolves to the device (DNS rebinding).
 */
export async function launchChromium(opts: { hostRules?: string } = {}): Promise<{ browser: Browser; close(): Promise<void> }> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [...CHROMIUM_FLAGS, ...(opts.hostRules ? [`--host-resolver-rules=${opts.hostRules}`] : [])],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}
