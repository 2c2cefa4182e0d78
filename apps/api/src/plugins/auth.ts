import fastifyJwt from '@fastify/jwt';
import { TokenError } from 'fast-jwt';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { forbidden, unauthorized } from '../problems.js';
import { ROLES, SUBJECT, type Role, type TokenSigning } from '../tokens.js';

/** A route's onRequest hook. */
export type RoleCheck = (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void) => void;
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
    /**
     * An onRequest hook that admits a valid token of one of these roles: who may call a
     * route is answered (401, 403) before its body is read, so a caller refused learns
     * nothing of how its body would be parsed or checked (400), and no body of a caller
     * refused is read at all.
     */
    requireRole(...roles: Role[]): RoleCheck;
    /** The request's verified principal; throws its 401 problem. Verified once per request, whoever asks first. */
    principalOf(request: FastifyRequest): Principal;
  }
  interface FastifyRequest {
    /** What verifying the request's token gave: its principal or its 401; null until asked. */
    verifiedPrincipal: Principal | Error | null;
  }
}

/** `Bearer <token>`, the scheme in any case, as @fastify/jwt reads the header. */
const BEARER = /^Bearer ([^ ]+)$/i;

/**
 * Tokens verified before, each until its `exp`. A sale's buyers send the same token many
 * times; its HMAC and decoding cost 10 % of the intake's CPU even behind fast-jwt's own
 * cache, which decodes and hashes a token to look it up. Here the lookup is the header
 * string itself. When full, the oldest entry goes.
 */
class VerifiedTokens {
  private readonly byHeader = new Map<string, { principal: Principal; expiresAtMs: number }>();

  constructor(private readonly capacity: number) {}

  get(header: string, nowMs: number): Principal | undefined {
    const entry = this.byHeader.get(header);
    if (!entry) return undefined;
    if (entry.expiresAtMs > nowMs) return entry.principal;
    this.byHeader.delete(header);
    return undefined;
  }

  remember(header: string, principal: Principal, expiresAtMs: number): void {
    if (this.capacity === 0) return;
    if (this.byHeader.size >= this.capacity) this.byHeader.delete(this.byHeader.keys().next().value!);
    this.byHeader.set(header, { principal, expiresAtMs });
  }
}

/** A lifetime in the largest whole unit that states it exactly: '7 days', '36 hours', '90 minutes'. */
function describeLifetime(ms: number): string {
  const units: [string, number][] = [['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1_000]];
  const [unit, size] = units.find(([, size]) => ms % size === 0) ?? ['millisecond', 1];
  const count = ms / size;
  return `${count} ${unit}${count === 1 ? '' : 's'}`;
}

export const authPlugin = fp(
  async (app: FastifyInstance, options: { signing: TokenSigning; tokenCacheSize: number; maxLifetimeMs: number; clockToleranceMs: number }) => {
    const { AUTH_JWT_SECRET: secret, AUTH_JWT_ISSUER: issuer, AUTH_JWT_AUDIENCE: audience } = options.signing;
    await app.register(fastifyJwt, {
      secret,
      sign: { algorithm: 'HS256' },
      verify: {
        algorithms: ['HS256'],
        requiredClaims: ['exp', 'sub', ...(issuer ? ['iss'] : []), ...(audience ? ['aud'] : [])],
        // the issuer's clock is not this host's: a token valid from now (nbf) is taken from now by either
        clockTolerance: options.clockToleranceMs,
        ...(issuer ? { allowedIss: issuer } : {}),
        ...(audience ? { allowedAud: audience } : {}),
      },
    });
    const verifiedTokens = new VerifiedTokens(options.tokenCacheSize);

    function authenticate(request: FastifyRequest): Principal {
      const header = request.headers.authorization;
      if (!header) throw unauthorized('Send Authorization: Bearer <token>');
      const nowMs = Date.now();
      const known = verifiedTokens.get(header, nowMs);
      if (known) return (request.user = known);
      const token = BEARER.exec(header)?.[1];
      if (!token) throw unauthorized('The token is not valid');
      let claims: Principal & { exp: number };
      try {
        // the plugin's own verifier (its algorithms and required claims), without request.jwtVerify's
        // second decode and callback chain: every buyer of a sale is verified once, most on their only checkout
        claims = app.jwt.verify(token);
      } catch (error) {
        throw unauthorized(error instanceof TokenError && error.code === TokenError.codes.expired ? 'The token has expired' : 'The token is not valid');
      }
      if (claims.exp * 1000 - nowMs > options.maxLifetimeMs + options.clockToleranceMs) {
        throw unauthorized(`The token expires more than ${describeLifetime(options.maxLifetimeMs)} from now, later than the api accepts`);
      }
      const { sub, role } = claims;
      if (typeof sub !== 'string' || !SUBJECT.test(sub) || !ROLES.includes(role)) {
        throw unauthorized('The token must carry a sub and a role of buyer, merchant or admin');
      }
      // requiredClaims makes `exp` present; a principal is shared by the requests that present its token
      const principal: Principal = Object.freeze({ ...claims });
      verifiedTokens.remember(header, principal, claims.exp * 1000);
      return (request.user = principal);
    }

    // the rate limiter asks first (whose budget?), the route's role check second
    app.decorateRequest('verifiedPrincipal', null);
    function principalOrRefusal(request: FastifyRequest): Principal | Error {
      try {
        return authenticate(request);
      } catch (error) {
        return error as Error;
      }
    }
    app.decorate('principalOf', (request: FastifyRequest) => {
      const verified = (request.verifiedPrincipal ??= principalOrRefusal(request));
      if (verified instanceof Error) throw verified;
      return verified;
    });

    // synchronous hooks (a throw is the hook's error): a checkout passes them in one turn, without a promise each
    app.decorate('requireRole', (...roles: Role[]): RoleCheck => (request, reply, done) => {
      let role: Role;
      try {
        ({ role } = app.principalOf(request));
      } catch (error) {
        // RFC 6750: a refused bearer token says which scheme the api wants, and why (no header: nothing to say why)
        void reply.header('www-authenticate', request.headers.authorization ? 'Bearer realm="orders", error="invalid_token"' : 'Bearer realm="orders"');
        throw error;
      }
      done(roles.includes(role) ? undefined : forbidden(`This needs the ${roles.join(' or ')} role`));
    });
  },
  { name: 'auth' },
);
