/**
 * The signer must produce what any Standard Webhooks receiver accepts. The
 * reference here is written from the specification in the test itself
 * (test/helpers/delivery.ts), and pinned to the published test vector.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { generateSecret, sign, validateSecret } from '../../src/delivery/signature.js';
import { standardSignature, verifyWebhook } from '../helpers/delivery.js';

const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};

describe('Standard Webhooks signatures', () => {
  it('the independent reference reproduces the published test vector', () => {
    expect('v1,' + standardSignature(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature);
    const headers = { 'webhook-id': VECTOR.id, 'webhook-timestamp': String(VECTOR.timestamp), 'webhook-signature': VECTOR.signature };
    expect(verifyWebhook(VECTOR.secret, headers, VECTOR.body, VECTOR.timestamp)).toBe(true);
    expect(verifyWebhook(VECTOR.secret, headers, VECTOR.body + ' ', VECTOR.timestamp)).toBe(false);
    expect(verifyWebhook(VECTOR.secret, headers, VECTOR.body, VECTOR.timestamp + 3600)).toBe(false);
  });

  it('discue signs the published test vector exactly', () => {
    expect(sign(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature);
  });

  it('agrees with the reference on random secrets, ids and unicode bodies', () => {
    for (let i = 0; i < 50; i++) {
      const secret = generateSecret();
      const id = randomBytes(13).toString('hex');
      const ts = 1_700_000_000 + i;
      const body = JSON.stringify({ data: `zahlung ✓ ${i} \u{1F4E6} "quoted" \n`, n: i });
      const header = sign(secret, id, ts, body);
      expect(header).toBe('v1,' + standardSignature(secret, id, ts, body));
      expect(verifyWebhook(secret, { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': header }, body, ts)).toBe(true);
      // Another secret does not verify.
      expect(verifyWebhook(generateSecret(), { 'webhook-id': id, 'webhook-timestamp': String(ts), 'webhook-signature': header }, body, ts)).toBe(false);
    }
  });

  it('generates whsec_ secrets of random bytes that validate, and refuses bad ones', () => {
    const a = generateSecret();
    const b = generateSecret();
    expect(a).not.toBe(b);
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    expect(Buffer.from(a.slice(6), 'base64').length).toBeGreaterThanOrEqual(24);
    expect(validateSecret(a)).toBe(a);
    expect(validateSecret(VECTOR.secret)).toBe(VECTOR.secret);
    for (const bad of ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_', 'whsec_c2hvcnQ=', 'whsec_not base64!!', 'whsec_' + 'A'.repeat(200)]) {
      expect(() => validateSecret(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }) as Error);
    }
  });
});
