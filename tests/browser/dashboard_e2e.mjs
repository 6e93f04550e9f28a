// Drives the dashboard of a running `retort serve` in headless Chromium over the DevTools
// protocol (a minimal client on --remote-debugging-pipe: no npm package, no WebSocket).
// Usage: node dashboard_e2e.mjs <chromium> <base URL> <run> <planted text> <out dir>
//                                <second run> <upload file> <upload set> <export folder>
// <run> harvests and finishes while the page watches; <second run> is still harvesting when
// the page gets to it (it is paused and resumed by keyboard, then cancelled through the dialog).
// Writes <out dir>/dashboard.png and prints one JSON line of findings on stdout; exits 1 with
// the reason on stderr when a check fails. Every wait is bounded.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [chromiumPath, base, run, planted, outDir, run2, uploadFile, uploadSet, exportOut] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), 'retort-chromium-'));
const browser = spawn(chromiumPath, [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
  '--no-default-browser-check', '--disable-extensions', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--metrics-recording-only', '--mute-audio',
  '--remote-debugging-pipe', '--user-data-dir=' + profile, '--window-size=1280,1600', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let browserErr = '';
browser.stderr.on('data', (d) => { browserErr = (browserErr + d).slice(-4000); });

// Chromium is asked to close (its helper processes end with it), killed if it has not within
// 3 s; its profile is removed once it has exited: removed while a helper still ran, the profile
// was written again and left behind in the temp folder.
let finishing = false;
function finish(code, message) {
  if (finishing) return;
  finishing = true;
  if (message) process.stderr.write(message + '\n');
  const cleanUp = () => {
    try { rmSync(profile, { recursive: true, force: true }); } catch (e) { /* best effort */ }
    process.exit(code);
  };
  if (browser.exitCode !== null || browser.signalCode !== null) return cleanUp();
  browser.once('exit', cleanUp);
  const kill = () => { try { browser.kill('SIGKILL'); } catch (e) { /* already gone */ } };
  setTimeout(kill, 3000);
  setTimeout(cleanUp, 6000);
  try { toBrowser.write(JSON.stringify({ id: 0, method: 'Browser.close' }) + '\0'); } catch (e) { kill(); }
}
const deadline = setTimeout(() => finish(1, 'timed out after 240 s\nchromium: ' + browserErr), 240000);

// ---- CDP over the pipe: NUL-terminated JSON messages on fds 3 (to the browser) and 4 ------
const toBrowser = browser.stdio[3], fromBrowser = browser.stdio[4];
let nextId = 1, pending = new Map(), buf = '';
const listeners = [];
fromBrowser.on('data', (chunk) => {
  buf += chunk.toString('utf8');
  for (let i = buf.indexOf('\0'); i >= 0; i = buf.indexOf('\0')) {
    const msg = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject, method } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(method + ': ' + JSON.stringify(msg.error)));
      else resolve(msg.result);
    } else if (msg.method) {
      for (const l of listeners) l(msg);
    }
  }
});
browser.on('exit', (code) => finish(1, 'chromium exited (' + code + ')\n' + browserErr));
function send(method, params = {}, sessionId) {
  const id = nextId++;
  const msg = { id, method, params };
  if (sessionId) msg.sessionId = sessionId;
  toBrowser.write(JSON.stringify(msg) + '\0');
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, maxMs = 60000, stepMs = 100) {
  for (let waited = 0; waited <= maxMs; waited += stepMs) {
    const v = await fn();
    if (v) return v;
    await sleep(stepMs);
  }
  throw new Error('timed out waiting for ' + what);
}

async function apiRun(name = run) {
  const r = await fetch(base + '/v1/runs/' + name);
  return r.json();
}

// Key presses as a keyboard sends them (what puppeteer's keyboard.press does): a key with text
// is a keyDown (which also types it), one without a rawKeyDown; then the keyUp.
const KEYS = { Tab: { code: 'Tab', keyCode: 9 }, Enter: { code: 'Enter', keyCode: 13, text: '\r' },
               ' ': { code: 'Space', keyCode: 32, text: ' ' } };
async function press(page, key) {
  const k = KEYS[key];
  await page('Input.dispatchKeyEvent', { type: k.text ? 'keyDown' : 'rawKeyDown', key, code: k.code,
    windowsVirtualKeyCode: k.keyCode, text: k.text, unmodifiedText: k.text });
  await page('Input.dispatchKeyEvent', { type: 'keyUp', key, code: k.code, windowsVirtualKeyCode: k.keyCode });
}

async function main() {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const page = (m, p) => send(m, p, sessionId);
  const problems = [];
  listeners.push((msg) => {
    if (msg.sessionId !== sessionId) return;
    if (msg.method === 'Runtime.consoleAPICalled' && (msg.params.type === 'error' || msg.params.type === 'assert'))
      problems.push('console.' + msg.params.type + ': ' + msg.params.args.map((a) => a.value ?? a.description).join(' '));
    if (msg.method === 'Runtime.exceptionThrown')
      problems.push('exception: ' + (msg.params.exceptionDetails.exception?.description || msg.params.exceptionDetails.text));
    if (msg.method === 'Log.entryAdded' && msg.params.entry.level === 'error')
      problems.push('log: ' + msg.params.entry.text + ' ' + (msg.params.entry.url || ''));
  });
  await page('Runtime.enable');
  await page('Log.enable');
  await page('Page.enable');
  await page('Emulation.setDeviceMetricsOverride', { width: 1280, height: 1600, deviceScaleFactor: 1, mobile: false });
  const evaluate = async (expr) => {
    const r = await page('Runtime.evaluate', { expression: expr, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error('evaluate failed: ' + expr + ': ' + JSON.stringify(r.exceptionDetails));
    return r.result.value;
  };
  await page('Page.navigate', { url: base + '/' });
  await until('the page to load', () => evaluate('document.readyState === "complete"'));
  const card = `document.querySelector('article[data-run="${run}"]')`;
  await until('the run card', () => evaluate(`!!${card}`));
  const runName = await evaluate(`${card}.querySelector('h3').textContent`);
  if (runName !== run) throw new Error('run name shown as ' + runName);

  // The progress bar moves.
  const progress = () => evaluate(`(() => { const p = ${card}.querySelector('progress'); return [p.value, p.max]; })()`);
  const seen = new Set();
  await until('the progress bar to move', async () => {
    const [v, max] = await progress();
    seen.add(v);
    return v > 0 && v < max && seen.size >= 2;
  }, 60000, 50);

  // Pause and resume through the page's buttons; the API says what happened.
  await evaluate(`${card}.querySelector('button:nth-of-type(1)').textContent`).then((t) => { if (t !== 'Pause') throw new Error('first button is ' + t); });
  await until('Pause to be enabled', () => evaluate(`!${card}.querySelectorAll('.row button')[0].disabled`));
  await evaluate(`${card}.querySelectorAll('.row button')[0].click()`);
  const paused = await until('the API to report paused', async () => { const r = await apiRun(); return r.state === 'paused' ? r : null; }, 30000);
  await until('Resume to be enabled', () => evaluate(`!${card}.querySelectorAll('.row button')[1].disabled`));
  const doneAtPause = paused.jobs.done;
  await evaluate(`${card}.querySelectorAll('.row button')[1].click()`);
  await until('the API to report running again', async () => { const r = await apiRun(); return r.harvesting || r.state === 'done'; }, 30000);

  // ...and reaches 100%.
  await until('the progress bar to reach 100%', async () => { const [v, max] = await progress(); seen.add(v); return max > 1 && v === max; }, 120000);
  const pctText = await evaluate(`${card}.querySelector('.progress-text').textContent`);
  if (!pctText.startsWith('100%')) throw new Error('progress text is ' + pctText);
  await until('the API to report done', async () => (await apiRun()).state === 'done', 30000);
  await until('the card to show done', () => evaluate(`${card}.querySelector('.state').textContent === 'done'`), 10000);

  // The response browser: the first page of the run.
  await evaluate(`(() => { const s = document.getElementById('browse-run'); s.value = ${JSON.stringify(run)};
    document.getElementById('browse-q').value = ''; document.getElementById('browse-form').requestSubmit(); })()`);
  await until('response rows', () => evaluate(`document.querySelectorAll('#browse-rows tr').length > 0`));
  const first = await evaluate(`(() => { const tr = document.querySelector('#browse-rows tr');
    return { job_id: Number(tr.dataset.job), answer: tr.querySelector('td.answer').textContent,
             prompt: tr.querySelector('td.prompt').textContent }; })()`);
  const rowsOnPage = await evaluate(`document.querySelectorAll('#browse-rows tr').length`);
  // Next page (keyset) shows other jobs.
  await evaluate(`document.getElementById('browse-next').click()`);
  await until('the second page', () => evaluate(`(() => { const tr = document.querySelector('#browse-rows tr'); return tr && Number(tr.dataset.job) > ${first.job_id}; })()`));
  const secondFirst = await evaluate(`Number(document.querySelector('#browse-rows tr').dataset.job)`);
  // The raw body on demand.
  await evaluate(`document.querySelector('#browse-rows tr button').click()`);
  await until('the raw body dialog', () => evaluate(`document.getElementById('raw-dialog').open && document.getElementById('raw-body').textContent.length > 0`));
  const rawShown = await evaluate(`document.getElementById('raw-body').textContent`);
  await evaluate(`document.getElementById('raw-dialog').close()`);

  // Search finds the planted string.
  await evaluate(`(() => { document.getElementById('browse-q').value = ${JSON.stringify(planted)};
    document.getElementById('browse-form').requestSubmit(); })()`);
  await until('the search result', () => evaluate(`(() => { const rows = document.querySelectorAll('#browse-rows tr');
    return rows.length === 1 && rows[0].querySelector('td.prompt').textContent.includes(${JSON.stringify(planted)}); })()`));
  const found = await evaluate(`(() => { const tr = document.querySelector('#browse-rows tr');
    return { job_id: Number(tr.dataset.job), prompt: tr.querySelector('td.prompt').textContent, answer: tr.querySelector('td.answer').textContent }; })()`);
  // Back to the first page for the screenshot.
  await evaluate(`(() => { document.getElementById('browse-q').value = ''; document.getElementById('browse-form').requestSubmit(); })()`);
  await until('rows again', () => evaluate(`document.querySelectorAll('#browse-rows tr').length > 1`));

  // Export from the page: the finished run, with common options; the page follows it to the end.
  await until('the run in the export form', () => evaluate(`[...document.getElementById('export-run').options].some(o => o.value === ${JSON.stringify(run)})`), 10000);
  await evaluate(`(() => { const $ = (id) => document.getElementById(id);
    $('export-run').value = ${JSON.stringify(run)}; $('export-out').value = ${JSON.stringify(exportOut)};
    $('export-format').value = 'sharegpt'; $('export-compress').value = 'gzip';
    $('export-split').value = 'train=0.75,validation=0.25';
    $('export-keep-truncated').checked = true; $('export-keep-duplicates').checked = true;
    $('export-form').requestSubmit(); })()`);
  const exportInfo = await until('the page to show the export finished', async () => {
    const t = await evaluate(`document.getElementById('export-info').textContent`);
    if (/^Export \d+ failed|^Export refused/.test(t)) throw new Error('the page shows: ' + t);
    return /^Export \d+ done: /.test(t) ? t : null;
  }, 30000);
  const exported = { id: Number(/^Export (\d+)/.exec(exportInfo)[1]), info: exportInfo };

  // Upload a prompt set from the page: the file goes on the file input as a user's choice would.
  await evaluate(`document.getElementById('upload-name').value = ${JSON.stringify(uploadSet)}`);
  const fileInput = await page('Runtime.evaluate', { expression: `document.getElementById('upload-file')` });
  await page('DOM.setFileInputFiles', { files: [uploadFile], objectId: fileInput.result.objectId });
  const chosen = await evaluate(`[...document.getElementById('upload-file').files].map(f => f.name)`);
  if (chosen.length !== 1) throw new Error('file input holds ' + JSON.stringify(chosen));
  await evaluate(`document.getElementById('upload-form').requestSubmit()`);
  const uploadInfo = await until('the page to report the upload', async () => {
    const t = await evaluate(`document.getElementById('upload-info').textContent`);
    if (t.startsWith('Upload refused')) throw new Error('the page shows: ' + t);
    return t.startsWith('Set ') ? t : null;
  }, 15000);
  const uploadedRow = await until('the uploaded set in the list', () => evaluate(`(() => {
    const tr = [...document.querySelectorAll('#sets-rows tr')].find(r => r.cells[0].textContent === ${JSON.stringify(uploadSet)});
    return tr ? { name: tr.cells[0].textContent, prompts: tr.cells[1].textContent } : null; })()`), 15000);
  const uploaded = { info: uploadInfo, row: uploadedRow };

  // The second run: Cancel asks first. Dismissing the dialog leaves the run harvesting.
  const card2 = `document.querySelector('article[data-run="${run2}"]')`;
  const button2 = (label) => `[...${card2}.querySelectorAll('.row button')].find(b => b.textContent === ${JSON.stringify(label)})`;
  const notCancelled = (r) => { if (r.state === 'cancelling' || r.state === 'cancelled') throw new Error(run2 + ' is ' + r.state); return r; };
  await until('the second run harvesting on the page', () => evaluate(`!!${card2} && ${card2}.dataset.state === 'running' && !${button2('Cancel…')}.disabled`), 15000);
  const dialogOpen = `document.getElementById('confirm-dialog').open`;
  await evaluate(`${button2('Cancel…')}.click()`);
  await until('the confirmation dialog', () => evaluate(dialogOpen), 5000);
  const confirmText = await evaluate(`document.getElementById('confirm-text').textContent`);
  if (!confirmText.includes(run2)) throw new Error('the dialog does not name the run: ' + confirmText);
  const harvestingBeforeDialog = notCancelled(await apiRun(run2)).harvesting;
  await evaluate(`[...document.querySelectorAll('#confirm-dialog button')].find(b => b.value === 'no').click()`);
  await until('the dialog to close', async () => !(await evaluate(dialogOpen)), 5000);
  const afterDismiss = notCancelled(await apiRun(run2));

  // Keyboard only: Tab to the second run's Pause, press Enter; Tab to Resume, press Space.
  const tabTo = async (what, target) => {
    for (let presses = 1; presses <= 200; presses++) {
      await press(page, 'Tab');
      if (await evaluate(`document.activeElement === ${target}`)) return presses;
    }
    throw new Error('Tab never reached ' + what + '; focus is on ' + await evaluate(`document.activeElement.outerHTML.slice(0, 120)`));
  };
  await until('Pause of the second run to be enabled', () => evaluate(`!${button2('Pause')}.disabled`), 10000);
  await evaluate(`document.activeElement.blur()`);
  const tabsToPause = await tabTo('Pause', button2('Pause'));
  await press(page, 'Enter');
  const paused2 = await until('the API to report the second run paused', async () => {
    const r = notCancelled(await apiRun(run2));
    return r.state === 'paused' ? r : null;
  }, 20000);
  await until('Resume of the second run to be enabled', () => evaluate(`!${button2('Resume')}.disabled`), 10000);
  const tabsToResume = await tabTo('Resume', button2('Resume'));
  await press(page, ' ');
  const resumed2 = await until('the API to report the second run harvesting again', async () => {
    const r = notCancelled(await apiRun(run2));
    return r.harvesting ? r : null;
  }, 20000);

  // Confirming the dialog cancels the run.
  await until('Cancel of the second run to be enabled', () => evaluate(`!${button2('Cancel…')}.disabled`), 10000);
  await evaluate(`${button2('Cancel…')}.click()`);
  await until('the confirmation dialog again', () => evaluate(dialogOpen), 5000);
  await evaluate(`[...document.querySelectorAll('#confirm-dialog button')].find(b => b.value === 'yes').click()`);
  const cancelled2 = await until('the API to report the second run cancelled', async () => {
    const r = await apiRun(run2);
    return r.state === 'cancelled' ? r : null;
  }, 20000);
  await until('the second card to show cancelled', () => evaluate(`${card2}.querySelector('.state').textContent === 'cancelled'`), 10000);
  const second = { harvesting_with_dialog_open: harvestingBeforeDialog, after_dismiss: { state: afterDismiss.state, harvesting: afterDismiss.harvesting },
    tabs_to_pause: tabsToPause, paused_state: paused2.state, tabs_to_resume: tabsToResume,
    resumed: { state: resumed2.state, harvesting: resumed2.harvesting }, cancelled_state: cancelled2.state };

  const a11y = await evaluate(`(() => ({
    // Every control shown (not in a closed dialog, not the token form a server without a token
    // never shows) is in the tab order and rendered.
    controls: [...document.querySelectorAll('button, input, select, textarea')]
      .filter(e => !e.closest('dialog:not([open])') && !e.closest('#auth[hidden]')).length,
    unreachable_controls: [...document.querySelectorAll('button, input, select, textarea')]
      .filter(e => !e.closest('dialog:not([open])') && !e.closest('#auth[hidden]'))
      .filter(e => e.tabIndex < 0 || !e.checkVisibility()).map(e => e.id || e.textContent || e.outerHTML.slice(0, 80)),
    progress_elements: document.querySelectorAll('progress').length,
    // Chromium compiles pattern attributes with the v flag and ignores (and logs) an invalid one.
    invalid_patterns: [...document.querySelectorAll('[pattern]')].filter(e => {
      try { new RegExp('^(?:' + e.pattern + ')$', 'v'); return false; } catch (err) { return true; } }).map(e => e.id),
    unlabelled_inputs: [...document.querySelectorAll('input, select')].filter(e => !e.closest('label') && !document.querySelector('label[for="' + e.id + '"]')).length,
    inline_scripts: [...document.querySelectorAll('script')].filter(s => !s.src).length }))()`);
  const shot = await page('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
  writeFileSync(join(outDir, 'dashboard.png'), Buffer.from(shot.data, 'base64'));
  if (problems.length) throw new Error('console errors:\n' + problems.join('\n'));
  process.stdout.write(JSON.stringify({ run_name: runName, progress_values: [...seen].sort((a, b) => a - b),
    done_at_pause: doneAtPause, first, rows_on_page: rowsOnPage, second_page_first: secondFirst,
    raw_chars: rawShown.length, found, exported, uploaded, second, a11y }) + '\n');
}

main().then(() => { clearTimeout(deadline); finish(0); }, (e) => { clearTimeout(deadline); finish(1, String(e && e.stack || e) + '\nchromium: ' + browserErr.slice(-1500)); });
