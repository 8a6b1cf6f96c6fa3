#!/usr/bin/env node
// The bookshop demo: a real end-to-end run of the real binary and daemon.
// A throwaway DISCUE_HOME, two queues, an HTTP listener (the dashboard, which
// verifies every signature) and a command listener (the mailer), events from
// three teams, then a check that every listener got every event, in order.
// Exits non-zero if anything is missing. Run: npm run demo
import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('./discue.cjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'discue-demo-'));
const env = { ...process.env, DISCUE_HOME: join(dir, 'home'), NO_COLOR: '1' };
delete env.DISCUE_SOCKET;

function discue(args, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      process.stdout.write(`$ discue ${args.map((a) => (/[\s'"{}$]/.test(a) ? `'${a}'` : a)).join(' ')}\n`);
      if (stdout.trim()) process.stdout.write(indent(stdout));
      if (stderr.trim()) process.stdout.write(indent(stderr));
      if (code !== 0) reject(new Error(`discue ${args.join(' ')} exited ${code}`));
      else resolve(stdout);
    });
    child.stdin.end(input ?? '');
  });
}

const indent = (text) => text.replace(/\n$/, '').replace(/^/gm, '    ') + '\n';

// The dashboard: an HTTP endpoint that checks Standard Webhooks signatures.
let secret = '';
const dashboard = [];
const badSignatures = [];
const server = createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    const id = req.headers['webhook-id'];
    const ts = req.headers['webhook-timestamp'];
    const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
      .update(`${id}.${ts}.${body}`)
      .digest();
    const given = String(req.headers['webhook-signature'] ?? '')
      .split(' ')
      .map((s) => Buffer.from(s.replace(/^v1,/, ''), 'base64'));
    if (!given.some((g) => g.length === expected.length && timingSafeEqual(g, expected))) badSignatures.push(id);
    dashboard.push(JSON.parse(body));
    res.writeHead(204).end();
  });
});

async function main() {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/events`;
  const mailLog = join(dir, 'mail.log');
  writeFileSync(
    join(dir, 'mailer.cjs'),
    `// The e-mail notifier: data on stdin, metadata in DISCUE_* variables.
let data = '';
process.stdin.on('data', (d) => (data += d)).on('end', () => {
  require('fs').appendFileSync(${JSON.stringify(mailLog)}, JSON.stringify({ id: process.env.DISCUE_MESSAGE_ID, queue: process.env.DISCUE_QUEUE, data }) + '\\n');
});
`,
  );

  console.log(`discue demo — state in ${env.DISCUE_HOME}\n`);
  await discue(['queue', 'create', 'payments']);
  await discue(['queue', 'create', 'shipping']);
  const added = JSON.parse(
    await discue(['listener', 'add', '--queue', 'payments', '--queue', 'shipping', '--url', url, '--name', 'dashboard', '--json']),
  );
  secret = added.secret;
  await discue(['listener', 'add', '--queue', 'shipping', '--exec', `${process.execPath} mailer.cjs`, '--name', 'mailer']);

  // The teams publish; none of them knows who listens.
  await discue(['publish', 'payments', '{"data":"{\\"order\\":1001,\\"status\\":\\"paid\\"}","name":"payment.succeeded"}']);
  await discue(['publish', 'shipping', '--data', 'Order 1001 shipped', '--name', 'order.shipped']);
  await discue(
    ['publish', 'shipping'],
    ['Order 1002 shipped', 'Order 1003 shipped', 'Order 1004 out of stock'].map((d) => JSON.stringify({ data: d })).join('\n') + '\n',
  );
  await discue(['publish', 'shipping', '--data', 'Order 1005 shipped', '--wait']);

  await discue(['listener', 'list']);
  await discue(['deliveries', 'list', '--state', 'delivered', '--limit', '3']);
  await discue(['queue', 'list']);

  const stored = JSON.parse(await discue(['messages', 'list', 'shipping', '--json']));
  const payments = JSON.parse(await discue(['messages', 'list', 'payments', '--json']));
  const mail = existsSync(mailLog) ? readFileSync(mailLog, 'utf8').trim().split('\n').map((l) => JSON.parse(l)) : [];
  await discue(['daemon', 'stop']);

  const problems = [];
  const dashIds = dashboard.map((m) => m.id);
  for (const m of [...payments, ...stored]) if (!dashIds.includes(m.id)) problems.push(`dashboard missed ${m.id}`);
  const shippingAtDashboard = dashboard.filter((m) => m.queue === 'shipping').map((m) => m.id);
  if (shippingAtDashboard.join() !== stored.map((m) => m.id).join()) problems.push('dashboard got shipping events out of order');
  if (mail.map((m) => m.id).join() !== stored.map((m) => m.id).join()) problems.push('mailer did not get every shipping event in order');
  if (mail.some((m, i) => m.data !== stored[i]?.data)) problems.push('mailer got altered data');
  if (badSignatures.length > 0) problems.push(`bad signatures: ${badSignatures.join(', ')}`);

  console.log(`\ndashboard received ${dashboard.length} events (signatures verified), mailer received ${mail.length}.`);
  if (problems.length > 0) {
    console.error('DEMO FAILED:\n  ' + problems.join('\n  '));
    process.exitCode = 1;
  } else {
    console.log('demo ok: every listener got every event, in order.');
  }
}

main()
  .catch((err) => {
    console.error('DEMO FAILED:', err.message);
    process.exitCode = 1;
  })
  .finally(async () => {
    server.close();
    await new Promise((r) => spawn(process.execPath, [BIN, 'daemon', 'stop'], { env, stdio: 'ignore' }).on('close', r));
    rmSync(dir, { recursive: true, force: true });
  });
