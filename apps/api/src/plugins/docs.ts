import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Where the API docs' pages are served (security-headers gives them a page's headers) */
export const DOCS_PATH = '/docs';

type MediaTypes = Record<string, { schema?: { type?: string | string[] } }>;
interface Operation {
  requestBody?: { required?: boolean; content?: MediaTypes };
  responses?: Record<string, { content?: MediaTypes }>;
}

/**
 * The document as the routes answer, where @fastify/swagger's defaults say otherwise: an error is
 * sent as application/problem+json (the error handler's content type), not the application/json
 * it lists for every schema; a body that may be absent (noFieldsBody) is not required.
 */
function documentedAsAnswered<T extends { paths?: object }>(document: T): T {
  for (const path of Object.values(document.paths ?? {}) as Array<Record<string, Operation>>) {
    for (const operation of Object.values(path)) {
      for (const [status, answer] of Object.entries(operation.responses ?? {})) {
        if (!/^[45]/.test(status) || !answer.content?.['application/json']) continue;
        const { 'application/json': problem, ...others } = answer.content;
        answer.content = { 'application/problem+json': problem, ...others };
      }
      const body = operation.requestBody;
      if (body && Object.values(body.content ?? {}).every((media) => [media.schema?.type].flat().includes('null'))) body.required = false;
    }
  }
  return document;
}

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
      transformObject: (document) => ('openapiObject' in document ? documentedAsAnswered(document.openapiObject) : document.swaggerObject),
    });
    await app.register(swaggerUi, { routePrefix: DOCS_PATH });
  },
  { name: 'docs' },
);
