/** HTTP API tokens: created, listed and revoked over the socket only (see daemon/tokens.ts). */
import { asParams } from '../params.js';
import type { HandlerMap } from './types.js';

export const tokenHandlers = {
  async 'token.create'(raw, ctx) {
    const params = asParams(raw);
    return ctx.tokens.create(params.name, params.scopes);
  },

  async 'token.list'(raw, ctx) {
    asParams(raw);
    return ctx.tokens.list();
  },

  async 'token.revoke'(raw, ctx) {
    return ctx.tokens.revoke(asParams(raw).name);
  },
} satisfies Partial<HandlerMap>;
