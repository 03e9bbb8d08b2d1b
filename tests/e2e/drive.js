'use strict';
/*
 * Drives Debian's Chromium (/usr/bin/chromium) through playwright-core for the
 * end-to-end test (test_browser.py): loads one page, waits (bounded) for the
 * page to publish window.__result, takes a screenshot, and prints one JSON
 * object on stdout:
 *
 *   {"result": <window.__result or null>, "console": [{type, text}],
 *    "page_errors": [...], "errors": [...], "status": <HTTP status of the page>}
 *
 *   node drive.js '<json options>'
 *
 * Options: url, screenshot (png path), user_data_dir (fresh, per run),
 * timeout_ms (overall bound for each wait, default 20000), expect_console (a
 * regex: also wait, bounded, until a console message matches it),
 * ignore_https_errors (default false: the test CA is trusted through the NSS
 * database in $HOME/.pki/nssdb, set up by the test), count_port (a port: when
 * the page publishes window.__hold (page.html ?hold=1, WebSocket open), list
 * the ESTABLISHED TCP sockets whose destination is that port with
 * `ss -Htnp` into "sockets", then call window.__release()), extra_args (more
 * Chromium flags).
 *
 * Failures are reported in "errors" (exit status 0) so that the test can show
 * everything the browser said; a usage error exits 2.
 */

const path = require('path');
const { execFileSync } = require('child_process');

const REPO = path.resolve(__dirname, '..', '..');
const { chromium } = require(path.join(REPO, 'node_modules', 'playwright-core'));

const opts = JSON.parse(process.argv[2] || '{}');
if (!opts.url || !opts.screenshot || !opts.user_data_dir) {
  process.stderr.write('usage: node drive.js \'{"url":..., "screenshot":..., "user_data_dir":...}\'\n');
  process.exit(2);
}
const timeout = opts.timeout_ms || 20000;

// The client ends of the TCP connections to 127.0.0.1:port now open on this
// machine, one `ss` line each (with the owning process, e.g. chromium).
function listSockets(port) {
  const text = execFileSync('ss', ['-Htnp', 'state', 'established', 'dst', `127.0.0.1:${port}`],
                            { encoding: 'utf8', timeout: 10000 });
  return text.split('\n').filter((l) => l.trim() !== '');
}

async function main() {
  const out = { result: null, console: [], page_errors: [], errors: [], status: null, sockets: null };
  let ctx = null;
  try {
    ctx = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: opts.executable || '/usr/bin/chromium',
      headless: true,
      timeout,
      ignoreHTTPSErrors: !!opts.ignore_https_errors,
      viewport: { width: 1000, height: 560 },
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--disable-dev-shm-usage',
        // Chromium resolves "localhost" to ::1 too; the proxy listens on 127.0.0.1
        '--host-resolver-rules=MAP localhost 127.0.0.1',
        // e.g. --log-net-log=FILE, to see what the network stack did
        ...(opts.extra_args || []),
      ],
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    const expectRe = opts.expect_console ? new RegExp(opts.expect_console) : null;
    let sawExpected = null;
    const expected = new Promise((resolve) => { sawExpected = resolve; });
    page.on('console', (m) => {
      const text = m.text();
      out.console.push({ type: m.type(), text });
      if (expectRe && expectRe.test(text)) sawExpected();
    });
    page.on('pageerror', (e) => out.page_errors.push(String(e && e.stack || e)));
    page.on('requestfailed', (r) => out.errors.push(
      `request failed: ${r.url()}: ${r.failure() && r.failure().errorText}`));

    const resp = await page.goto(opts.url, { timeout, waitUntil: 'load' });
    out.status = resp ? resp.status() : null;
    if (opts.count_port) {
      try {
        await page.waitForFunction(() => window.__hold || window.__result !== undefined, null,
                                   { timeout });
        if (await page.evaluate(() => !!window.__hold)) {
          out.sockets = listSockets(opts.count_port);
          await page.evaluate(() => window.__release());
        } else {
          out.errors.push('the page finished without holding for the socket count');
        }
      } catch (e) {
        out.errors.push(`socket count: ${e.message.split('\n')[0]}`);
      }
    }
    try {
      await page.waitForFunction(() => window.__result !== undefined, null, { timeout });
      out.result = await page.evaluate(() => window.__result);
    } catch (e) {
      out.errors.push(`page did not finish: ${e.message.split('\n')[0]}`);
    }
    if (expectRe) {
      let timer;
      const ok = await Promise.race([
        expected.then(() => true),
        new Promise((resolve) => { timer = setTimeout(() => resolve(false), timeout); }),
      ]);
      clearTimeout(timer);
      if (!ok) out.errors.push(`no console message matching /${opts.expect_console}/ within ${timeout} ms`);
    }
    await page.screenshot({ path: opts.screenshot, fullPage: true, timeout });
  } catch (e) {
    out.errors.push(String(e && e.stack || e));
  } finally {
    if (ctx) {
      try { await ctx.close(); } catch (e) { out.errors.push(`close: ${e.message}`); }
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(1);
});
