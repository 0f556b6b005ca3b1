/**
 * What configures the NATS JetStream bus, apart from the code that talks to it (broker.ts), so
 * that a process without NATS_URL never loads the NATS client.
 */
export interface BrokerSettings {
  url: string;
  /** JetStream stream holding the events. */
  stream: string;
  /** Subjects are `<prefix>.<event type>`. */
  subjectPrefix: string;
}

export const DEFAULT_STREAM = 'TUANGOU_EVENTS';
/** Events stay in the stream this long (for a consumer that was down, or a replay by hand). */
export const STREAM_MAX_AGE_MS = 7 * 24 * 3600_000;
export const DEFAULT_SUBJECT_PREFIX = 'tuangou.events';

export interface ConsumerRetry {
  base_ms: number;
  cap_ms: number;
}
export const DEFAULT_CONSUMER_RETRY: ConsumerRetry = { base_ms: 500, cap_ms: 60_000 };
