// Offline maps for the Geographic tab: world-atlas and us-atlas (served by the binary at
// /ui/world-110m.json and /ui/us-states-10m.json, fetched when the tab first opens), projected
// with d3-geo into SVG. d3-geo cuts every shape at the antimeridian (its default clipping), so
// Russia's and Fiji's polygons are drawn as pieces at both edges instead of a band across the map.
// Places are bubbles: area by one measure, colour by another, each one focusable with its values
// as its accessible name, so the map works from the keyboard and with a screen reader.

import { geoAlbersUsa, geoGraticule10, geoNaturalEarth1, geoPath, GeoProjection } from "d3-geo";
import { feature, FeatureCollection, mesh } from "topojson-client";

const kSvgNs = "http://www.w3.org/2000/svg";

function svg(tag: string, attrs: Record<string, string | number> = {}, ...children: (Node | string)[]): SVGElement {
  const e = document.createElementNS(kSvgNs, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e as SVGElement;
}

interface Topology {
  objects: Record<string, unknown>;
}

const atlases = new Map<string, Promise<Topology>>();

/** One of the atlases compiled into the binary, fetched once per page load. */
function atlas(file: "world-110m.json" | "us-states-10m.json"): Promise<Topology> {
  let p = atlases.get(file);
  if (!p) {
    p = fetch("/ui/" + file).then((r) => {
      if (!r.ok) throw new Error(`map ${file}: ${r.status} ${r.statusText}`);
      return r.json() as Promise<Topology>;
    });
    p.catch(() => atlases.delete(file)); // a failed fetch is retried next time
    atlases.set(file, p);
  }
  return p;
}

export interface Place {
  key: string; // a stable id (data-place)
  label: string; // the name and values, read out and shown on hover
  latitude: number;
  longitude: number;
  size: number; // bubble area is proportional to it
  colour: number | null; // position on the colour scale
  kind?: string; // a class: "region" or "city"
}

/** Light to dark blue: readable on the pale land, and ordered for colour-blind readers. */
function shade(t: number): string {
  const a = [198, 219, 239];
  const b = [8, 48, 107];
  const c = a.map((x, i) => Math.round(x + (b[i] - x) * Math.min(1, Math.max(0, t))));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

export interface MapResult {
  element: SVGSVGElement;
  drawn: number; // places inside the projection (geoAlbersUsa leaves out what is not in the US)
}

export interface Scale {
  min: number;
  max: number;
}

function bubbles(projection: GeoProjection, places: Place[], colours: Scale, maxRadius: number): { g: SVGElement; drawn: number } {
  const g = svg("g", { class: "places" });
  const biggest = Math.max(1e-9, ...places.map((p) => p.size));
  const span = colours.max - colours.min || 1;
  let drawn = 0;
  // Biggest first, so that smaller bubbles stay on top and reachable.
  for (const p of [...places].sort((x, y) => y.size - x.size)) {
    const xy = projection([p.longitude, p.latitude]);
    if (!xy) continue;
    const r = 2.5 + maxRadius * Math.sqrt(Math.max(0, p.size) / biggest);
    const fill = p.colour === null ? "#bbbbbb" : shade((p.colour - colours.min) / span);
    g.append(
      svg(
        "circle",
        {
          cx: xy[0].toFixed(1),
          cy: xy[1].toFixed(1),
          r: r.toFixed(1),
          fill,
          class: "place " + (p.kind ?? ""),
          "data-place": p.key,
          tabindex: 0,
          role: "img",
          "aria-label": p.label,
        },
        svg("title", {}, p.label),
      ),
    );
    ++drawn;
  }
  return { g, drawn };
}

/** The world (Natural Earth projection) with `places` as bubbles. */
export async function worldMap(places: Place[], colours: Scale, title: string): Promise<MapResult> {
  const world = await atlas("world-110m.json");
  const width = 960;
  const height = 500;
  const projection = geoNaturalEarth1().fitSize([width, height], { type: "Sphere" });
  const path = geoPath(projection);
  const countries = feature(world, world.objects.countries) as FeatureCollection;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "map world", role: "group", "aria-label": title });
  root.append(
    svg("path", { class: "sphere", d: path({ type: "Sphere" }) ?? "" }),
    svg("path", { class: "graticule", d: path(geoGraticule10()) ?? "" }),
    svg("g", { class: "countries" }, ...countries.features.map((f) => svg("path", { class: "land", "data-country": f.properties.name ?? "", d: path(f) ?? "" }))),
    svg("path", { class: "borders", d: path(mesh(world, world.objects.countries, (a, b) => a !== b)) ?? "" }),
  );
  const { g, drawn } = bubbles(projection, places, colours, 26);
  root.append(g);
  return { element: root as SVGSVGElement, drawn };
}

/** The United States (Albers, with Alaska and Hawaii inset) with the `places` inside it. */
export async function usMap(places: Place[], colours: Scale, title: string): Promise<MapResult> {
  const us = await atlas("us-states-10m.json");
  const width = 960;
  const height = 600;
  const nation = feature(us, us.objects.nation);
  const projection = geoAlbersUsa().fitSize([width, height], nation);
  const path = geoPath(projection);
  const states = feature(us, us.objects.states) as FeatureCollection;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "map us", role: "group", "aria-label": title });
  root.append(
    svg("g", { class: "states" }, ...states.features.map((f) => svg("path", { class: "land", "data-state-name": f.properties.name ?? "", d: path(f) ?? "" }))),
    svg("path", { class: "borders", d: path(mesh(us, us.objects.states, (a, b) => a !== b)) ?? "" }),
  );
  const { g, drawn } = bubbles(projection, places, colours, 30);
  root.append(g);
  return { element: root as SVGSVGElement, drawn };
}

/** The colour scale's key: a gradient from `min` to `max` with their labels. */
export function legend(name: string, colours: Scale, show: (v: number) => string, sizeName: string): HTMLElement {
  const bar = document.createElement("div");
  bar.className = "map-legend";
  const ramp = document.createElement("span");
  ramp.className = "ramp";
  ramp.style.background = `linear-gradient(to right, ${shade(0)}, ${shade(1)})`;
  ramp.setAttribute("aria-hidden", "true");
  bar.append(`${name}: ${show(colours.min)} `, ramp, ` ${show(colours.max)}. Bubble area: ${sizeName}.`);
  return bar;
}
