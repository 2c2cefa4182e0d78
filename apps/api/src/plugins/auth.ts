import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { forbidden, unauthorized } from '../problems.js';

export type Role = 'buyer' | 'merchant' | 'admin';
export interface Principal {
  sub: string;
  role: Role;
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: Principal;
    user: Principal;
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    /** A preHandler that admits a valid token of one of these roles. */
    requireRole(...roles: Role[]): preHandlerAsyncHookHandler;
    /** The request's verified principal; rejects with a 401 problem. Verified once per request, whoever asks first. */
    principalOf(request: FastifyRequest): Promise<Principal>;
  }
  interface FastifyRequest {
    verifiedPrincipal: Promise<Principal> | null;
  }
}

const ROLES: readonly Role[] = ['buyer', 'merchant', 'admin'];
const SUBJECT = /^[A-Za-z0-9._:@-]{1,64}$/;

export const authPlugin = fp(
  async (app: FastifyInstance, options: { secret: string; tokenCacheSize: number }) => {
    await app.register(fastifyJwt, {
      secret: options.secret,
      sign: { algorithm: 'HS256' },
      // A sale's buyers send the same token many times: an LRU of verified tokens takes the
      // HMAC off most requests (11 % of the intake's CPU). Entries never outlive `exp`.
      verify: { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'], ...(options.tokenCacheSize > 0 && { cache: options.tokenCacheSize }) },
    });

    async function authenticate(request: FastifyRequest): Promise<Principal> {
      if (!request.headers.authorization) throw unauthorized('Send Authorization: Bearer <token>');
      try {
        await request.jwtVerify();
      } catch (error) {
        const code = (error as { code?: string }).code;
        throw unauthorized(code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED' ? 'The token has expired' : 'The token is not valid');
      }
      const { sub, role } = request.user;
      if (typeof sub !== 'string' || !SUBJECT.test(sub) || !ROLES.includes(role)) {
        throw unauthorized('The token must carry a sub and a role of buyer, merchant or admin');
      }
      return request.user;
    }

    // the rate limiter asks first (whose budget?), the route's role check second
    app.decorateRequest('verifiedPrincipal', null);
    app.decorate('principalOf', (request: FastifyRequest) => (request.verifiedPrincipal ??= authenticate(request)));

    app.decorate('requireRole', (...roles: Role[]) => async (request: FastifyRequest) => {
      const principal = await app.principalOf(request);
      if (!roles.includes(principal.role)) throw forbidden(`This needs the ${roles.join(' or ')} role`);
    });
  },
  { name: 'auth' },
);
