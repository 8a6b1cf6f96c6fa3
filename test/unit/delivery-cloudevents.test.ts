import { describe, expect, it } from 'vitest';
import { cloudEventHeaders, headerValue } from '../../src/delivery/cloudevents.js';

describe('CloudEvents binary headers', () => {
  it('name the message, its queue and time; a message without a name has the default type', () => {
    const envelope = { id: '01M8QGQNZ20H7136E9YRHVSBR0', queue: 'orders', data: 'x', publishedAt: '2026-12-01T00:40:35.042Z' };
    expect(cloudEventHeaders({ ...envelope, name: 'order.shipped' })).toEqual({
      'ce-specversion': '1.0',
      'ce-id': envelope.id,
      'ce-source': '/discue/queues/orders',
      'ce-type': 'order.shipped',
      'ce-time': envelope.publishedAt,
    });
    expect(cloudEventHeaders(envelope)['ce-type']).toBe('discue.message');
  });

  it('percent-encode space, quote, percent and non-ASCII as UTF-8, as the HTTP binding says', () => {
    expect(headerValue('a b"c%d')).toBe('a%20b%22c%25d');
    expect(headerValue('bestellung.übermittelt')).toBe('bestellung.%C3%BCbermittelt');
    expect(headerValue('\ud800')).toBe('%EF%BF%BD');
    expect(decodeURIComponent(headerValue('größe 1€'))).toBe('größe 1€');
  });
});
