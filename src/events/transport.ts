import type { NatsConnection } from '@nats-io/transport-node';

import type { PollingLoop } from '../platform/polling-loop.ts';
import type { BrokerConsumers } from './broker.ts';
import { DEFAULT_CONSUMER_RETRY, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, type BrokerSettings, type ConsumerRetry } from './broker-settings.ts';
import { startRelay, type EventBus } from './relay.ts';
import type { EventsDb } from './tables.ts';

/** How events travel from the outboxes to the consumers in a process that does background work. */
export interface EventTransport {
  relay: PollingLoop;
  /** True when no event is waiting for, or in the hands of, a consumer (the broker's count; in-process, the relay's). */
  idle(): Promise<boolean>;
  stop(): Promise<void>;
}

export interface TransportOptions {
  broker: BrokerSettings | undefined;
  databases: readonly EventsDb[];
  bus: EventBus;
  owner: string;
  now: () => number;
  onError: (error: unknown) => void;
  consumerRetry?: ConsumerRetry | undefined;
}

export function brokerSettings(config: { natsUrl?: string | undefined; natsStream?: string | undefined; natsSubjectPrefix?: string | undefined }): BrokerSettings | undefined {
  if (!config.natsUrl) return undefined;
  return { url: config.natsUrl, stream: config.natsStream ?? DEFAULT_STREAM, subjectPrefix: config.natsSubjectPrefix ?? DEFAULT_SUBJECT_PREFIX };
}

/** In-process without a broker (the embedded default); JetStream with one. */
export async function startEventTransport(options: TransportOptions): Promise<EventTransport> {
  const { broker, databases, bus, owner, now, onError } = options;
  if (!broker) {
    const relay = startRelay({ databases, bus, owner, now, onError });
    return { relay, idle: async () => (await relay.drain()) === 0, stop: () => relay.stop() };
  }
  // Loaded only with NATS_URL: the embedded default never carries the NATS client.
  const { openBroker, setupJetStream, startBrokerConsumers, startBrokerRelay } = await import('./broker.ts');
  const { nc, js } = await openBroker(broker, owner);
  let consumers: BrokerConsumers | undefined;
  let relay: PollingLoop | undefined;
  try {
    await setupJetStream(nc, broker, bus.consumers());
    consumers = startBrokerConsumers({ js, settings: broker, consumers: bus.consumers(), deadLetterDb: bus.db, retry: options.consumerRetry ?? DEFAULT_CONSUMER_RETRY, now, onError });
    relay = startBrokerRelay({ databases, js, settings: broker, owner, now, onError });
  } catch (error) {
    await closeBroker(nc);
    throw error;
  }
  return {
    relay,
    idle: () => consumers.idle(),
    stop: async () => {
      await relay.stop();
      await consumers.stop();
      await closeBroker(nc);
    },
  };
}

/** How long closing waits for buffered acks to reach the broker. */
const CLOSE_DRAIN_MS = 2_000;

async function closeBroker(nc: NatsConnection): Promise<void> {
  // drain() flushes acks still buffered; a broker that is away cannot take them, so close instead.
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, CLOSE_DRAIN_MS, 'timeout').unref());
  const drained = await Promise.race([nc.drain().then(() => 'drained' as const, () => 'failed' as const), timeout]);
  if (drained !== 'drained' && !nc.isClosed()) await nc.close();
}
