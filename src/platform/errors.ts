/**
 * Every expected failure is a named code. This is the one table that maps each code
 * to its HTTP status and default message; the HTTP layer reads nothing else.
 * Listed roughly in precedence order: request shape, identity, existence, business rules.
 */
export const ERROR_CODES = {
  invalid_request: { status: 400, message: 'The request is malformed.' },
  invalid_field: { status: 400, message: 'A field is missing or invalid.' },
  unsafe_text: { status: 400, message: 'Text may not carry control characters, bidirectional overrides or unpaired surrogates.' },
  missing_idempotency_key: { status: 400, message: 'The Idempotency-Key header is required.' },
  unauthenticated: { status: 401, message: 'A valid bearer token is required.' },
  forbidden: { status: 403, message: 'This role may not do that.' },
  not_found: { status: 404, message: 'No such resource.' },
  coupon_template_not_found: { status: 404, message: 'No such coupon template.' },
  order_not_found: { status: 404, message: 'No such order.' },
  checkout_not_found: { status: 404, message: 'No such checkout.' },
  buyer_not_found: { status: 404, message: 'No such buyer.' },
  payment_not_found: { status: 404, message: 'No such payment.' },
  refund_not_found: { status: 404, message: 'No such refund.' },
  merchant_not_found: { status: 404, message: 'No such merchant.' },
  notification_rejected: { status: 400, message: 'The notification failed verification and was ignored.' },
  request_timeout: { status: 408, message: 'The request did not arrive in time.' },
  uri_too_long: { status: 414, message: 'The path is too long.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  unsupported_media_type: { status: 415, message: 'The body must be application/json.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  activity_sku_not_found: { status: 422, message: 'No such activity SKU.' },
  activity_not_open: { status: 422, message: 'The group-buy activity is not open for orders.' },
  leader_not_found: { status: 422, message: 'No such group leader (pickup point).' },
  cart_full: { status: 422, message: 'The cart holds the maximum number of lines.' },
  line_quantity_exceeded: { status: 422, message: 'The quantity exceeds the maximum per line.' },
  duplicate_line: { status: 422, message: 'The same activity SKU appears twice.' },
  coupon_not_applicable: { status: 422, message: 'The coupon does not apply to this order.' },
  shipping_fee_exceeds_limit: { status: 422, message: 'A shipping rule would charge more than MAX_SHIPPING_FEE_FEN for this order.' },
  order_payable_exceeds_limit: { status: 422, message: 'The order would cost more than MAX_ORDER_PAYABLE_FEN.' },
  insufficient_stock: { status: 409, message: 'Not enough stock left.' },
  stock_adjustment_refused: { status: 409, message: 'The adjustment would take away stock that is reserved or sold.' },
  price_changed: { status: 409, message: 'The price changed while checking out (the units at the activity price ran out); look at the cart again.' },
  coupon_unavailable: { status: 409, message: 'The coupon is not yours to use now (used, held by another order, or unknown).' },
  insufficient_points: { status: 409, message: 'Not enough points.' },
  purchase_limit_exceeded: { status: 409, message: 'The purchase limit for this item is reached.' },
  open_orders_limit_reached: { status: 409, message: 'You have the most unpaid orders allowed (MAX_OPEN_ORDERS_PER_BUYER); pay or cancel one first.' },
  unpaid_units_limit_reached: { status: 409, message: 'Your unpaid orders already hold the most units of this item allowed (MAX_UNPAID_UNITS_PER_BUYER_SKU).' },
  checkout_rate_limited: { status: 429, message: 'Too many checkouts in a short time; try again in a moment.' },
  idempotency_key_reused: { status: 409, message: 'This Idempotency-Key was used with a different request.' },
  idempotency_request_in_progress: { status: 409, message: 'A request with this Idempotency-Key is still in progress.' },
  order_state_conflict: { status: 409, message: 'The order changed meanwhile; read it again.' },
  order_not_cancellable: { status: 409, message: 'The order can no longer be cancelled.' },
  price_protection_not_eligible: { status: 409, message: 'This line cannot claim price protection.' },
  price_protection_already_claimed: { status: 409, message: 'Price protection was already claimed for this line.' },
  return_url_not_allowed: { status: 422, message: 'The returnUrl must be https to one of the configured hosts (RETURN_URL_HOSTS).' },
  channel_not_configured: { status: 422, message: 'That payment channel is not configured here.' },
  merchant_channel_account_missing: { status: 422, message: 'A merchant of this order has no sub-merchant id at that payment channel, so it cannot be paid through it; pay with another.' },
  pay_method_not_supported: { status: 422, message: 'The channel does not offer that way of paying.' },
  order_not_payable: { status: 409, message: 'The order is not waiting for payment.' },
  nothing_payable: { status: 409, message: 'Nothing is payable on this order: it is paid without a payment channel.' },
  merchant_not_payable: { status: 422, message: 'A merchant of this checkout cannot be paid through that channel; pay with another.' },
  too_many_merchants: { status: 422, message: 'This checkout has more merchants than one payment on that channel can carry; pay with another.' },
  payment_switch_too_early: { status: 409, message: 'The payment opened a moment ago cannot be closed yet; pay it, or try another way in a minute.' },
  payment_state_conflict: { status: 409, message: 'The payment changed meanwhile; read it again.' },
  refund_exceeds_paid: { status: 409, message: 'The refund would exceed what was paid.' },
  refund_not_allowed: { status: 409, message: 'This refund is not allowed by the refund policy.' },
  channel_refused: { status: 502, message: 'The payment channel refused the request.' },
  channel_down: { status: 503, message: 'The payment channel keeps failing and is out of the cashier for now; pay with another.' },
  channel_unavailable: { status: 503, message: 'The payment channel did not answer; try again.' },
  event_replay_failed: { status: 409, message: 'The consumer failed on the event again; the dead letter stays open.' },
  flash_sale_not_ready: { status: 503, message: 'The flash sale’s stock is being loaded or its store is out of reach; try again in a moment.' },
  internal_error: { status: 500, message: 'Something went wrong on our side.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An expected failure: the caller handles it, the API maps it to a status. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly field: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, options: { message?: string; field?: string; details?: Record<string, unknown> } = {}) {
    super(options.message ?? ERROR_CODES[code].message);
    this.name = 'AppError';
    this.code = code;
    this.field = options.field;
    this.details = options.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, message: this.message };
    if (this.field !== undefined) body.field = this.field;
    if (this.details !== undefined) body.details = this.details;
    return body;
  }
}

export interface ErrorBody {
  code: ErrorCode;
  message: string;
  field?: string;
  details?: Record<string, unknown>;
}

export function isAppError(error: unknown, code?: ErrorCode): error is AppError {
  return error instanceof AppError && (code === undefined || error.code === code);
}

/**
 * A broken invariant: never caught to carry on. A message that needs building is passed as a
 * function, so hot paths do not build strings for assertions that hold.
 */
export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantViolation(typeof message === 'string' ? message : message());
}

export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
    this.name = 'InvariantViolation';
  }
}
