import type { BrowserContext, LaunchOptions } from 'playwright-core';

export type { BrowserContext } from 'playwright-core';

export declare const CHROMIUM: string;
export declare const CHROMIUM_FLAGS: readonly string[];
export declare function hasChromium(): boolean;
export declare function launchChromium(profileDir: string, options?: Partial<LaunchOptions>): Promise<BrowserContext>;
export interface RecordedRequest {
  method: string;
  url: string;
  bodyBytes: number;
  body: Buffer;
}
export interface StaticHost {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}
export declare function serveStatic(root: string, options?: { headers?: boolean }): Promise<StaticHost>;
