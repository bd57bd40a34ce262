// The API client the pages share: one credential (an API key or an embed token), JSON in and
// out, and errors that carry the server's message, so every view can show what went wrong.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A semantic query (docs/metrics.md): the JSON form /v1/query takes. */
export interface SemanticQuery {
  measures: string[];
  dimensions?: string[];
  filters?: { member: string; operator: string; values: string[] }[];
  timeDimensions?: { dimension: "time"; granularity?: string; dateRange: [string, string] }[];
  order?: Record<string, "asc" | "desc">;
  limit?: number;
}

/** What /v1/query answers: column names and rows (numbers, strings or null). */
export interface QueryResult {
  columns: string[];
  rows: (string | number | null)[][];
  source: string;
  cached: boolean;
  ms: number;
}

export interface Catalogue {
  measures: { name: string; title?: string; description?: string }[];
  dimensions: { name: string; type?: string }[];
  data_through: string | null;
}

export type Params = Record<string, string | number | undefined | null>;

export class Api {
  constructor(
    readonly credential: string,
    private readonly base = "",
  ) {}

  url(path: string, params: Params = {}): string {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
    }
    const s = q.toString();
    return this.base + path + (s ? "?" + s : "");
  }

  private async send(path: string, init: RequestInit, params?: Params): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.url(path, params), {
        ...init,
        headers: { ...(init.headers ?? {}), Authorization: "Bearer " + this.credential },
      });
    } catch (e) {
      throw new ApiError(0, "the server did not answer (" + String(e) + ")");
    }
    if (!response.ok) {
      let message = response.statusText;
      try {
        message = ((await response.json()) as { error?: string }).error ?? message;
      } catch {
        // not JSON: keep the status text
      }
      throw new ApiError(response.status, message);
    }
    return response;
  }

  async get<T>(path: string, params?: Params): Promise<T> {
    return (await (await this.send(path, { method: "GET" }, params)).json()) as T;
  }

  async text(path: string, params?: Params): Promise<string> {
    return (await this.send(path, { method: "GET" }, params)).text();
  }

  async query(q: SemanticQuery): Promise<QueryResult> {
    const r = await this.send("/v1/query", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(q),
    });
    return (await r.json()) as QueryResult;
  }

  /** The live stream (server-sent events); EventSource cannot send headers, so the credential
   * goes in access_token, which the server takes out of the query before any handler sees it. */
  events(path: string, params: Params = {}): EventSource {
    return new EventSource(this.url(path, { ...params, access_token: this.credential }));
  }
}

/** Column `name` of a query result as numbers (null stays null). */
export function column(r: QueryResult, name: string): (number | null)[] {
  const i = r.columns.indexOf(name);
  if (i < 0) throw new Error("no column " + name);
  return r.rows.map((row) => (row[i] === null ? null : Number(row[i])));
}

export function labels(r: QueryResult, name: string): string[] {
  const i = r.columns.indexOf(name);
  if (i < 0) throw new Error("no column " + name);
  return r.rows.map((row) => String(row[i] ?? ""));
}
