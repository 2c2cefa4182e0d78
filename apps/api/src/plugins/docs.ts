import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Where the API docs' pages are served (security-headers gives them a page's headers) */
export const DOCS_PATH = '/docs';

export const docsPlugin = fp(
  async (app: FastifyInstance) => {
    await app.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'Order system',
          version: '1.0.0',
          description:
            'Checkout, order life and order centre of the shop. Errors are RFC 9457 problem details with a stable `code`; a path with a percent escape that is not valid UTF-8 is refused 400 VALIDATION_FAILED, and one with a path parameter over 100 characters 414 URI_TOO_LONG, on every route. Money is integer minor units.',
        },
        components: {
          securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        },
        security: [{ bearer: [] }],
      },
    });
    await app.register(swaggerUi, { routePrefix: DOCS_PATH });
  },
  { name: 'docs' },
);
