export { recordEvent, type DomainEvent } from './outbox.ts';
export { EventBus, inTransaction, startRelay, type EventHandler, type TransactionalHandler } from './relay.ts';
export { consumeOnce, handled, MAX_CONSUMER_ATTEMPTS, type Consumer } from './inbox.ts';
export { listDeadLetters, replayDeadLetter, type DeadLetter } from './dead-letters.ts';
export { DEFAULT_CONSUMER_RETRY, DEFAULT_STREAM, DEFAULT_SUBJECT_PREFIX, type BrokerSettings, type ConsumerRetry } from './broker-settings.ts';
export type { BrokerConsumers } from './broker.ts';
export type * from './tables.ts';
