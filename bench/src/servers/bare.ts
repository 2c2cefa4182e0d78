import Fastify from 'fastify';

/** The ceiling: Fastify answering a POST with a constant, no I/O. */
const app = Fastify({ logger: false });
const answer = { status: 'OK' };
app.post('/bare', async () => answer);
await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
