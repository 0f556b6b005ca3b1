import { AckPolicy, DeliverPolicy, DiscardPolicy, jetstream, JetStreamApiCodes, JetStreamApiError, jetstreamManager, RetentionPolicy, StorageType, type ConsumerConfig, type JetStreamClient, type JetStreamManager, type JsMsg, type StreamConfig } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';

import { claimDue, completeDue, deferDue } from '../platform/due-rows.ts';
import { STREAM_MAX_AGE_MS, type BrokerSettings, type ConsumerRetry } from './broker-settings.ts';
import { pollingLoop, type PollingLoop } from '../platform/polling-loop.ts';
import { consumeOnce, MAX_CONSUMER_ATTEMPTS, recordDeadLetter, type Consumer } from './inbox.ts';
import { eventOfRow, RELAY_BATCH_SIZE } from './relay.ts';
import type { DomainEvent } from './outbox.ts';
import type { EventsDb, OutboxEventRow } from './tables.ts';

/**
 * NATS JetStream as the bus (production). The relay publishes each outbox row with the event id
 * as the message id, so a row published again after a crash (its lease ran out before it was
 * marked) is dropped by the server's duplicate window. Each consumer is a durable pull consumer
 * with explicit acks, filtered to its event type's subject.
 */
export { DEFAULT_CONSUMER_RETRY, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, type BrokerSettings, type ConsumerRetry } from './broker-settings.ts';
/** Re-publishes of one event within this window are dropped; far longer than an outbox lease (30 s). */
export const DUPLICATE_WINDOW_MS = 2 * 60_000;
export { STREAM_MAX_AGE_MS };
/** A consumer's unacknowledged message is delivered again after this long. */
export const ACK_WAIT_MS = 30_000;
/** Messages one consumer may hold unacknowledged; the server stops delivering past it. */
export const MAX_ACK_PENDING = 1_000;
/** Messages one consumer handles at once in this process; one aggregate's are handled in order. */
export const CONSUMER_CONCURRENCY = 16;
/** Messages a consumer pulls from the server per request. */
const CONSUMER_PULL_BATCH = 64;
const PUBLISH_TIMEOUT_MS = 2_000;
/** While the broker is out of reach, unpublished rows wait this long at most before the next try. */
const BROKER_RETRY_CAP_MS = 1_000;
const BROKER_RETRY_BASE_MS = 50;
const RELAY_IDLE_MS = 100;
const RELAY_BATCH_MS = 2;
const RESUBSCRIBE_MS = 500;

const ns = (ms: number): number => ms * 1_000_000;

export function subjectOf(settings: Pick<BrokerSettings, 'subjectPrefix'>, eventType: string): string {
  return `${settings.subjectPrefix}.${eventType}`;
}

/** Consumer names may not contain dots; subscriber names use them. */
export function durableName(consumer: string): string {
  return consumer.replace(/[^A-Za-z0-9_-]/g, '_');
}

export async function connectBroker(url: string, name: string): Promise<NatsConnection> {
  // Never give up reconnecting: while the broker is away, events wait in the outbox.
  return connect({ servers: url, name, maxReconnectAttempts: -1, reconnectTimeWait: 250, waitOnFirstConnect: true });
}

/** Creates or updates the stream and one durable consumer per subscriber (`tuangou migrate`, and every worker start). */
export async function setupJetStream(nc: NatsConnection, settings: BrokerSettings, consumers: readonly Pick<Consumer, 'name' | 'type'>[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const stream: Partial<StreamConfig> & { name: string } = {
    name: settings.stream,
    subjects: [`${settings.subjectPrefix}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: ns(STREAM_MAX_AGE_MS),
    duplicate_window: ns(DUPLICATE_WINDOW_MS),
  };
  if (await exists(() => jsm.streams.info(settings.stream))) await jsm.streams.update(settings.stream, stream);
  else await jsm.streams.add(stream);
  for (const consumer of consumers) await setupConsumer(jsm, settings, consumer);
}

async function setupConsumer(jsm: JetStreamManager, settings: BrokerSettings, consumer: Pick<Consumer, 'name' | 'type'>): Promise<void> {
  const name = durableName(consumer.name);
  const config: Partial<ConsumerConfig> = {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    filter_subject: subjectOf(settings, consumer.type),
    // A consumer added later starts from the oldest event kept; its inbox makes that safe to repeat.
    deliver_policy: DeliverPolicy.All,
    // Never dropped by the server: after MAX_CONSUMER_ATTEMPTS the consumer itself dead-letters the event.
    max_deliver: -1,
    ack_wait: ns(ACK_WAIT_MS),
    max_ack_pending: MAX_ACK_PENDING,
  };
  if (await exists(() => jsm.consumers.info(settings.stream, name))) {
    const { durable_name: _, deliver_policy: __, ...update } = config;
    await jsm.consumers.update(settings.stream, name, update);
  } else {
    await jsm.consumers.add(settings.stream, config);
  }
}

async function exists(info: () => Promise<unknown>): Promise<boolean> {
  try {
    await info();
    return true;
  } catch (error) {
    const code = error instanceof JetStreamApiError ? error.code : undefined;
    if (code === JetStreamApiCodes.StreamNotFound || code === JetStreamApiCodes.ConsumerNotFound) return false;
    throw error;
  }
}

export interface BrokerRelayOptions {
  databases: readonly EventsDb[];
  js: JetStreamClient;
  settings: BrokerSettings;
  owner: string;
  now: () => number;
  onError: (error: unknown) => void;
}

/** Moves committed events from each database's outbox to JetStream, a bounded batch per pass. */
export function startBrokerRelay(options: BrokerRelayOptions): PollingLoop {
  let failedPasses = 0;
  const pass = async (): Promise<number> => {
    let published = 0;
    for (const db of options.databases) {
      const { sent, failed } = await publishBatch(db, options, failedPasses);
      published += sent;
      if (failed) {
        failedPasses += 1;
        return published;
      }
    }
    failedPasses = 0;
    return published;
  };
  return pollingLoop(pass, { idle_ms: RELAY_IDLE_MS, batch_ms: RELAY_BATCH_MS }, options.onError);
}

async function publishBatch(db: EventsDb, { js, settings, owner, now, onError }: BrokerRelayOptions, failedPasses: number): Promise<{ sent: number; failed: boolean }> {
  const rows = await claimDue<OutboxEventRow>(db, 'outbox_events', owner, now(), RELAY_BATCH_SIZE);
  if (rows.length === 0) return { sent: 0, failed: false };
  // Published in row order on one connection, so the stream keeps the outbox's order.
  const results = await Promise.allSettled(
    rows.map((row) => js.publish(subjectOf(settings, row.event_type), JSON.stringify(eventOfRow(row)), { msgID: row.event_id, timeout: PUBLISH_TIMEOUT_MS })),
  );
  const sent = rows.filter((_, i) => results[i]!.status === 'fulfilled').map((r) => r.id);
  const unsent = rows.filter((_, i) => results[i]!.status === 'rejected').map((r) => r.id);
  await completeDue(db, 'outbox_events', owner, sent);
  if (unsent.length === 0) return { sent: sent.length, failed: false };
  // The broker is away: the rows wait for it (never dead: it is not the event's fault), and come
  // due again soon enough to go out within a second of its return.
  const error = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason;
  onError(error);
  const wait_ms = Math.min(BROKER_RETRY_CAP_MS, BROKER_RETRY_BASE_MS * 2 ** failedPasses);
  await deferDue(db, 'outbox_events', owner, unsent, now() + wait_ms, error);
  return { sent: sent.length, failed: true };
}

export interface BrokerConsumersOptions {
  js: JetStreamClient;
  settings: BrokerSettings;
  consumers: readonly Consumer[];
  /** Where dead letters are written (the main database). */
  deadLetterDb: EventsDb;
  retry: ConsumerRetry;
  now: () => number;
  onError: (error: unknown) => void;
}

export interface BrokerConsumers {
  /** True when no consumer has a message waiting, unacknowledged or in hand. */
  idle(): Promise<boolean>;
  stop(): Promise<void>;
}

export function startBrokerConsumers(options: BrokerConsumersOptions): BrokerConsumers {
  const runs = options.consumers.map((consumer) => runConsumer(consumer, options));
  return {
    idle: async () => {
      for (const run of runs) if (!(await run.idle())) return false;
      return true;
    },
    stop: async () => {
      for (const run of runs) await run.stop();
    },
  };
}

function runConsumer(consumer: Consumer, options: BrokerConsumersOptions): BrokerConsumers {
  const { js, settings, onError } = options;
  const name = durableName(consumer.name);
  let stopped = false;
  let close: (() => Promise<unknown>) | undefined;
  const lanes = new Lanes(CONSUMER_CONCURRENCY);

  const loop = (async () => {
    while (!stopped) {
      try {
        const messages = await (await js.consumers.get(settings.stream, name)).consume({ max_messages: CONSUMER_PULL_BATCH });
        close = () => messages.close();
        if (stopped) await messages.close();
        for await (const message of messages) {
          await lanes.run(laneKey(message), () => handleMessage(consumer, message, options));
        }
      } catch (error) {
        if (!stopped) onError(error);
      }
      if (!stopped) await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_MS));
    }
  })();

  return {
    idle: async () => {
      if (lanes.busy()) return false;
      const info = await (await js.consumers.get(settings.stream, name)).info(true);
      return info.num_pending === 0 && info.num_ack_pending === 0;
    },
    stop: async () => {
      stopped = true;
      await close?.();
      await loop;
      await lanes.untilFinished();
    },
  };
}

function laneKey(message: JsMsg): string {
  try {
    return (message.json<DomainEvent>()).aggregateId ?? '';
  } catch {
    return '';
  }
}

async function handleMessage(consumer: Consumer, message: JsMsg, { deadLetterDb, retry, now, onError }: BrokerConsumersOptions): Promise<void> {
  let event: DomainEvent;
  try {
    event = message.json<DomainEvent>();
  } catch (error) {
    onError(new Error(`consumer ${consumer.name}: unreadable message ${message.seq} dropped`, { cause: error }));
    return message.term();
  }
  const attempt = message.info.deliveryCount;
  try {
    await consumeOnce(consumer, event, now());
    message.ack();
    return;
  } catch (error) {
    onError(new Error(`consumer ${consumer.name} failed on ${event.type} ${event.eventId} (attempt ${attempt})`, { cause: error }));
    if (attempt >= MAX_CONSUMER_ATTEMPTS) {
      try {
        await recordDeadLetter(deadLetterDb, consumer.name, event, attempt, error, now());
        message.term(); // no reason: servers before 2.10 do not read one
        return;
      } catch (deadLetterError) {
        // The database is out of reach too: keep the message, try again later.
        onError(deadLetterError);
      }
    }
    message.nak(Math.min(retry.cap_ms, retry.base_ms * 2 ** (attempt - 1)));
  }
}

/**
 * Bounded concurrency that keeps one key's work in order: work for a key runs after the
 * previous work for the same key; at most `limit` pieces of work are in hand at once.
 */
class Lanes {
  private readonly tails = new Map<string, Promise<void>>();
  private inHand = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  busy(): boolean {
    return this.inHand > 0;
  }

  /** Resolves once the work is admitted (not done), so the caller can take the next message. */
  async run(key: string, work: () => Promise<void>): Promise<void> {
    while (this.inHand >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inHand += 1;
    const previous = this.tails.get(key) ?? Promise.resolve();
    const tail = previous.then(work).catch(() => undefined).finally(() => {
      this.inHand -= 1;
      if (this.tails.get(key) === tail) this.tails.delete(key);
      this.waiting.shift()?.();
    });
    this.tails.set(key, tail);
  }

  async untilFinished(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}

export async function openBroker(settings: BrokerSettings, owner: string): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
  const nc = await connectBroker(settings.url, owner);
  return { nc, js: jetstream(nc) };
}
