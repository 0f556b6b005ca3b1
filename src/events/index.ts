export { recordEvent, type DomainEvent } from './outbox.ts';
export { EventBus, inTransaction, startRelay, type EventHandler, type TransactionalHandler } from './relay.ts';
export { consumeOnce, handled, INBOX_RETENTION_MS, MAX_CONSUMER_ATTEMPTS, pruneInbox, type Consumer } from './inbox.ts';
export { listDeadLetters, replayDeadLetter, type DeadLetter } from './dead-letters.ts';
export { DEFAULT_CONSUMER_RETRY, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, type BrokerSettings, type ConsumerRetry } from './broker-settings.ts';
export type { BrokerConsumers } from './broker.ts';
export type * from './tables.ts';
export { deadLetterCount, deadOutboxEventCount, oldestUndeliveredEvent_ms } from './backlog.ts';
