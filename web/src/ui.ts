// Small DOM helpers and the card every chart and table lives in: a title, the loading, empty and
// error states, and an export of the data the card shows as CSV.

import { ApiError } from "./api";

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | EventListener | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (typeof v === "function") e.addEventListener(k.replace(/^on/, ""), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    e.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return e;
}

/** A table of values as CSV (RFC 4180 quoting). */
export function toCsv(columns: string[], rows: unknown[][]): string {
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  };
  return [columns, ...rows].map((r) => r.map(cell).join(",")).join("\r\n") + "\r\n";
}

export function download(name: string, text: string, type = "text/csv"): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export interface CardData {
  columns: string[];
  rows: unknown[][];
}

/**
 * A card: a titled box whose body shows a state. `data-state` (loading, ready, empty, error) and
 * `data-rows` say what it shows, for people using assistive technology (aria-busy) and for the
 * browser tests.
 */
export class Card {
  readonly root: HTMLElement;
  readonly body: HTMLElement;
  private data: CardData | null = null;
  private readonly exportButton: HTMLButtonElement;

  constructor(
    readonly id: string,
    title: string,
    opts: { wide?: boolean; note?: string } = {},
  ) {
    this.exportButton = h(
      "button",
      { class: "ghost", type: "button", title: "Download this card's data as CSV", disabled: true },
      "CSV",
    );
    this.exportButton.addEventListener("click", () => {
      if (this.data) download(this.id + ".csv", toCsv(this.data.columns, this.data.rows));
    });
    this.body = h("div", { class: "card-body" });
    this.root = h(
      "section",
      { class: "card" + (opts.wide ? " wide" : ""), "data-card": id, "aria-labelledby": id + "-title" },
      h("header", {}, h("h3", { id: id + "-title" }, title), this.exportButton),
      opts.note ? h("p", { class: "note" }, opts.note) : null,
      this.body,
    );
    this.loading();
  }

  loading(): void {
    this.set("loading", 0);
    this.body.replaceChildren(h("div", { class: "state loading", role: "status" }, "Loading…"));
  }

  empty(message = "No data for these filters."): void {
    this.set("empty", 0);
    this.body.replaceChildren(h("div", { class: "state empty", role: "status" }, message));
  }

  error(e: unknown): void {
    this.set("error", 0);
    const message = e instanceof ApiError ? `${e.status || ""} ${e.message}`.trim() : String(e);
    this.body.replaceChildren(h("div", { class: "state error", role: "alert" }, message));
  }

  /** Marks the card ready with `data` (what CSV export downloads); the caller fills the body. */
  ready(data: CardData): void {
    this.data = data;
    this.set("ready", data.rows.length);
    this.exportButton.disabled = false;
    this.body.replaceChildren();
  }

  private set(state: string, rows: number): void {
    this.root.dataset.state = state;
    this.root.dataset.rows = String(rows);
    this.root.setAttribute("aria-busy", state === "loading" ? "true" : "false");
    if (state !== "ready") {
      this.data = null;
      this.exportButton.disabled = true;
    }
  }
}

/** What a card shows: its data (for CSV export) and how to draw it into the card's body. */
export interface Shown {
  data: CardData;
  render: (body: HTMLElement) => void;
}

/** Runs `load` for a card, showing loading, then the result, or the empty or error state;
 * `show` answers null when the result has nothing to show (`emptyMessage` then says so). */
export async function fill<T>(card: Card, load: () => Promise<T>, show: (value: T) => Shown | null, emptyMessage?: string): Promise<void> {
  card.loading();
  try {
    const shown = show(await load());
    if (shown === null) {
      card.empty(emptyMessage);
      return;
    }
    card.ready(shown.data);
    shown.render(card.body);
  } catch (e) {
    card.error(e);
  }
}

export function table(columns: string[], rows: (string | Node)[][], caption?: string): HTMLTableElement {
  return h(
    "table",
    {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, ...columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c) => h("td", {}, c))))),
  );
}
