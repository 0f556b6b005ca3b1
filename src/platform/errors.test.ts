import { describe, expect, it } from 'vitest';
import { AppError, ERROR_CODES, type ErrorCode } from './errors.ts';
import { errorBody } from './http/server.ts';

describe('the error code table', () => {
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    it(`${code} has an HTTP status and a message, and reaches the client as {code, message}`, () => {
      const { status, message } = ERROR_CODES[code];
      expect(Number.isInteger(status) && status >= 400 && status <= 599).toBe(true);
      expect(message.length).toBeGreaterThan(0);
      const error = new AppError(code, { field: 'f' });
      expect(error.status).toBe(status);
      expect(errorBody(error)).toEqual({ code, message, field: 'f' });
    });
  }

  it('turns anything unexpected into internal_error without leaking its message', () => {
    expect(errorBody(new Error('secret connection string'))).toEqual({ code: 'internal_error', message: ERROR_CODES.internal_error.message });
  });
});
