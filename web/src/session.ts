// Who is using the page: the credential (an API key typed at the login form, kept for the
// browser tab in sessionStorage; or an embed token passed in the URL fragment, kept in memory
// only) and what GET /v1/me says it may see.

import { Api, ApiError } from "./api";

export interface Me {
  role: "admin" | "analyst" | "agent" | "partner" | "subscriber";
  partner: number | null;
  subscriber: number | null;
  dashboards: string[];
  expires: string | null;
  via: "key" | "token";
}

export interface Session {
  api: Api;
  me: Me;
  embedded: boolean;
  /** The newest day with stored data, YYYY-MM-DD: the pages' "today". */
  through: string;
}

const kStorage = "tally.key";
/** Where the filters of a browser tab's session are kept (filters.ts); signing out clears it. */
export const kFiltersStorage = "tally.filters";

export function storedKey(): string | null {
  return sessionStorage.getItem(kStorage);
}

export function forgetKey(): void {
  sessionStorage.removeItem(kStorage);
  sessionStorage.removeItem(kFiltersStorage);
}

/** Checks `credential` with the server and opens a session; throws ApiError when refused. */
export async function open(credential: string, embedded: boolean): Promise<Session> {
  const api = new Api(credential);
  const [me, catalogue] = await Promise.all([api.get<Me>("/v1/me"), api.get<{ data_through: string | null }>("/v1/metrics")]);
  if (!embedded) sessionStorage.setItem(kStorage, credential);
  const today = new Date().toISOString().slice(0, 10);
  return { api, me, embedded, through: catalogue.data_through ?? today };
}

/** True when the session may open `dashboard` (API keys open every one). */
export function opens(s: Session, dashboard: string): boolean {
  return s.me.dashboards.length === 0 || s.me.dashboards.includes("*") || s.me.dashboards.includes(dashboard);
}

export { ApiError };
