import { Redis } from 'ioredis';

/**
 * A Redis client for a test file that owns every key under `prefix` (so parallel files never
 * meet); close() deletes them and disconnects.
 */
export function testRedis(url: string, prefix: string): { redis: Redis; close(): Promise<void> } {
  const redis = new Redis(url);
  return {
    redis,
    close: async () => {
      const keys = await redis.keys(`${prefix}*`).catch(() => [] as string[]);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    },
  };
}
