import type { ChannelName } from '../../payments/channels/types.ts';
import type { Faults } from './faults.ts';
import type { SandboxEvent } from './trades.ts';

/**
 * How the sandbox tells the merchant what happened: each event's signed request, sent on the
 * channel's retry schedule until acknowledged, with the fault switches applied on the way.
 */

export interface OutgoingNotification {
  url: string;
  headers: Record<string, string>;
  body: string;
}

export interface ChannelNotifier {
  /** The signed request for an event, or undefined when the channel sends none for it. misSign: spoil the signature. */
  build(event: SandboxEvent, options: { misSign: boolean }): OutgoingNotification | undefined;
  /** Whether the merchant's answer stops the retries (Alipay: exactly `success`; WeChat: 200/204; …). */
  acknowledged(answer: { status: number; body: string }): boolean;
  /** Delays before each retry after the first attempt, in real milliseconds before scaling. */
  retrySchedule_ms: readonly number[];
  /**
   * The events the channel notifies one by one for an event, when it sends several requests for it
   * (Alipay notifies each sub-order of a merge pay on its own). Absent: one request per event.
   */
  separately?(event: SandboxEvent): SandboxEvent[];
}

export interface DeliveryAttempt {
  channel: ChannelName;
  url: string;
  status: number;
  acknowledged: boolean;
  misSigned: boolean;
  at_ms: number;
}

/** Most notifications waiting to be delivered at once. */
export const MAX_PENDING_NOTIFICATIONS = 100_000;
const DELIVERY_TIMEOUT_MS = 10_000;

export class NotificationSender {
  /** Every delivery attempt, newest last, at most MAX_PENDING_NOTIFICATIONS of them. */
  readonly deliveries: DeliveryAttempt[] = [];
  private readonly held: Array<() => void> = [];
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(
    private readonly options: {
      now: () => number;
      retryScale: number;
      log: (message: string, fields?: Record<string, unknown>) => void;
      /** The switches as they are now: the sender uses up their counters. */
      faults: () => Faults;
    },
  ) {}

  /**
   * Sends the event's notification unless the channel sends none for it or a fault swallows it;
   * an event the channel notifies in parts is sent part by part, each meeting the faults on its own.
   */
  send(event: SandboxEvent, notifier: ChannelNotifier): void {
    for (const part of notifier.separately?.(event) ?? [event]) this.sendOne(part, notifier);
  }

  private sendOne(event: SandboxEvent, notifier: ChannelNotifier): void {
    if (this.stopped) return;
    if (!notifier.build(event, { misSign: false })) return;
    const faults = this.options.faults();
    if (faults.drop > 0) {
      faults.drop--;
      this.options.log('notification dropped (fault)', { channel: event.trade.channel, payNo: event.trade.payNo, kind: event.kind });
      return;
    }
    const copies = faults.duplicate > 0 ? (faults.duplicate--, 2) : 1;
    const start = () => {
      for (let copy = 0; copy < copies; copy++) this.track(this.deliver(event, notifier));
    };
    if (faults.reorder) this.held.push(start);
    else start();
  }

  /** Sends the notifications held by the reorder switch, newest first. */
  releaseHeld(): void {
    const held = this.held.splice(0).reverse();
    for (const send of held) send();
  }

  /** Waits until every notification is delivered, acknowledged or out of retries. */
  async untilDelivered(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private track(delivery: Promise<void>): void {
    if (this.inFlight.size >= MAX_PENDING_NOTIFICATIONS) {
      this.options.log('notification queue full; notification dropped');
      return;
    }
    this.inFlight.add(delivery);
    void delivery.finally(() => this.inFlight.delete(delivery));
  }

  private async deliver(event: SandboxEvent, notifier: ChannelNotifier): Promise<void> {
    const faults = () => this.options.faults();
    if (faults().delay_ms > 0) await this.sleep(faults().delay_ms);
    for (let attempt = 0; attempt <= notifier.retrySchedule_ms.length && !this.stopped; attempt++) {
      if (attempt > 0) await this.sleep(notifier.retrySchedule_ms[attempt - 1]! * this.options.retryScale);
      if (this.stopped) return;
      const misSign = faults().misSign > 0 ? (faults().misSign--, true) : false;
      const request = notifier.build(event, { misSign })!;
      let answer = { status: 0, body: '' };
      try {
        const response = await fetch(request.url, {
          method: 'POST',
          headers: request.headers,
          body: request.body,
          signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
        });
        answer = { status: response.status, body: await response.text() };
      } catch (error) {
        this.options.log('notification delivery failed', { url: request.url, error: String(error) });
      }
      const acknowledged = notifier.acknowledged(answer);
      this.deliveries.push({ channel: event.trade.channel, url: request.url, status: answer.status, acknowledged, misSigned: misSign, at_ms: this.options.now() });
      if (this.deliveries.length > MAX_PENDING_NOTIFICATIONS) this.deliveries.splice(0, this.deliveries.length - MAX_PENDING_NOTIFICATIONS);
      if (acknowledged) return;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, Math.max(0, Math.round(ms)));
      timer.unref?.();
      this.timers.add(timer);
    });
  }
}
