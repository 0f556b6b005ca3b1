import type { KeyObject } from 'node:crypto';
import { AppError } from '../../../platform/errors.ts';
import { authorization, platformSignatureProblem } from './protocol.ts';

/** A bill file can be large; it gets longer than an API call to arrive. */
export const BILL_DOWNLOAD_TIMEOUT_MS = 60_000;
/** Largest compressed bill we take in; a bigger one is a fault, not a bill. */
export const MAX_BILL_DOWNLOAD_BYTES = 64 * 1024 * 1024;

export interface WechatHttpOptions {
  baseUrl: string;
  mchId: string;
  serialNo: string;
  key: KeyObject;
  ring: ReadonlyMap<string, KeyObject>;
  timeout_ms: number;
  now: () => number;
}

/** A verified answer: the platform's signature on it held, so its status and body can be believed. */
export interface WechatReply {
  status: number;
  body: unknown;
}

export interface WechatHttp {
  call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<WechatReply>;
  /** The bill file behind a download_url: signed GET, unsigned answer (its integrity is the bill's hash_value). */
  download(url: string): Promise<Uint8Array>;
}

export function unavailable(message: string, details: Record<string, unknown> = {}): AppError {
  return new AppError('channel_unavailable', { message: `WeChat Pay: ${message}`, details: { channel: 'wechat', ...details } });
}

export function wechatHttp(options: WechatHttpOptions): WechatHttp {
  const base = new URL(options.baseUrl.replace(/\/+$/, '') + '/');

  function signedHeaders(method: string, url: URL, body: string): Record<string, string> {
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': 'tuangou (wechatpay-apiv3)',
      // The path signed is the one sent, prefix included, as the official SDKs do with a custom baseURL.
      Authorization: authorization({
        mchId: options.mchId,
        serialNo: options.serialNo,
        key: options.key,
        method,
        pathWithQuery: url.pathname + url.search,
        body,
        timestamp_s: Math.floor(options.now() / 1000),
      }),
    };
    if (body) headers['Content-Type'] = 'application/json';
    return headers;
  }

  async function send(method: string, url: URL, body: string, timeout_ms: number): Promise<Response> {
    try {
      return await fetch(url, { method, headers: signedHeaders(method, url, body), body: body || undefined, signal: AbortSignal.timeout(timeout_ms) });
    } catch (error) {
      throw unavailable('no answer', { url: url.pathname, reason: String(error) });
    }
  }

  return {
    async call(method, path, body) {
      const url = new URL(path.replace(/^\/+/, ''), base);
      const text = body === undefined ? '' : JSON.stringify(body);
      const response = await send(method, url, text, options.timeout_ms);
      let raw: string;
      try {
        raw = await response.text();
      } catch (error) {
        throw unavailable('answer cut short', { url: url.pathname, reason: String(error) });
      }
      // Nothing in an answer is believed, error codes included, until the platform's signature holds.
      const problem = platformSignatureProblem(
        options.ring,
        {
          timestamp: response.headers.get('wechatpay-timestamp'),
          nonce: response.headers.get('wechatpay-nonce'),
          signature: response.headers.get('wechatpay-signature'),
          serial: response.headers.get('wechatpay-serial'),
        },
        raw,
        options.now(),
      );
      if (problem) throw unavailable(`answer failed verification: ${problem}`, { url: url.pathname, status: response.status });
      if (raw === '') return { status: response.status, body: undefined };
      try {
        return { status: response.status, body: JSON.parse(raw) as unknown };
      } catch {
        throw unavailable('answer is not JSON', { url: url.pathname, status: response.status });
      }
    },

    async download(downloadUrl) {
      let url: URL;
      try {
        url = new URL(downloadUrl);
      } catch {
        throw unavailable('download_url is not a URL');
      }
      // Our signature goes only to the host we were configured with.
      if (url.origin !== base.origin) throw unavailable('download_url points at another host', { origin: url.origin });
      const response = await send('GET', url, '', BILL_DOWNLOAD_TIMEOUT_MS);
      if (!response.ok) throw unavailable('bill download refused', { status: response.status, body: (await response.text().catch(() => '')).slice(0, 200) });
      const declared = Number(response.headers.get('content-length') ?? '0');
      if (declared > MAX_BILL_DOWNLOAD_BYTES) throw unavailable('bill file too large', { bytes: declared });
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await response.arrayBuffer());
      } catch (error) {
        throw unavailable('bill download cut short', { reason: String(error) });
      }
      if (bytes.length > MAX_BILL_DOWNLOAD_BYTES) throw unavailable('bill file too large', { bytes: bytes.length });
      return bytes;
    },
  };
}
