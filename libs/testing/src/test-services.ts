/** The MySQL server the tests make their databases on (a database name in it is replaced by each test's own). */
export const TEST_MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test';
/** The Redis the tests share, each under key and queue prefixes of its own. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
