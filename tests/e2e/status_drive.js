'use strict';
/*
 * Drives Debian's Chromium (/usr/bin/chromium) through playwright-core for the
 * status page test (test_status_page.py): loads one page, waits (bounded)
 * until the JavaScript expression `wait_for` is true in the page, evaluates
 * `collect` there, takes a full-page screenshot and prints one JSON object:
 *
 *   {"value": <collect's value or null>, "console": [{type, text}],
 *    "page_errors": [...], "errors": [...], "status": <HTTP status of the page>}
 *
 *   node status_drive.js '<json options>'
 *
 * Options: url, screenshot (png path), user_data_dir (fresh, per run),
 * wait_for and collect (expressions), timeout_ms (default 20000). The
 * Chromium flags are those of drive.js. Failures are reported in "errors"
 * (exit status 0) so that the test can show everything the browser said.
 */

const path = require('path');

const REPO = path.resolve(__dirname, '..', '..');
const { chromium } = require(path.join(REPO, 'node_modules', 'playwright-core'));

const opts = JSON.parse(process.argv[2] || '{}');
if (!opts.url || !opts.screenshot || !opts.user_data_dir || !opts.wait_for || !opts.collect) {
  process.stderr.write('usage: node status_drive.js \'{"url", "screenshot", "user_data_dir", ' +
                       '"wait_for", "collect"}\'\n');
  process.exit(2);
}
const timeout = opts.timeout_ms || 20000;

async function main() {
  const out = { value: null, console: [], page_errors: [], errors: [], status: null };
  let ctx = null;
  try {
    ctx = await chromium.launchPersistentContext(opts.user_data_dir, {
      executablePath: '/usr/bin/chromium',
      headless: true,
      timeout,
      viewport: { width: 1200, height: 700 },
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--disable-dev-shm-usage',
      ],
    });
    const page = ctx.pages()[0] || await ctx.newPage();
    page.on('console', (m) => out.console.push({ type: m.type(), text: m.text() }));
    page.on('pageerror', (e) => out.page_errors.push(String(e && e.stack || e)));
    page.on('requestfailed', (r) => out.errors.push(
      `request failed: ${r.url()}: ${r.failure() && r.failure().errorText}`));
    const resp = await page.goto(opts.url, { timeout, waitUntil: 'load' });
    out.status = resp ? resp.status() : null;
    try {
      await page.waitForFunction(opts.wait_for, null, { timeout });
      out.value = await page.evaluate(opts.collect);
    } catch (e) {
      out.errors.push(`wait_for never held: ${e.message.split('\n')[0]}`);
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
