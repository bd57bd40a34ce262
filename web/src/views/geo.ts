// Geographic: the catalogue's measures by region and by subscribers' home city
// (GET /v1/insights/geo), on a world map (regions at the centre of their cities, and the cities)
// and a map of the United States (its cities), with the same numbers in tables. Every filter
// applies: the year range, partner, plan and region.

import { FilterState } from "../filters";
import { Place, Scale, legend, usMap, worldMap } from "../maps";
import { money, num, pct } from "../format";
import { Card, h, table } from "../ui";

interface GeoPlace {
  name: string;
  country?: string;
  region?: string;
  latitude: number | null;
  longitude: number | null;
  [measure: string]: string | number | null | undefined;
}

interface GeoReport {
  measures: string[];
  range: { from: string; to: string };
  regions: GeoPlace[];
  cities: GeoPlace[];
}

const kMeasures: { id: string; title: string; show: (v: number | null) => string }[] = [
  { id: "active_subscribers", title: "Active subscribers", show: (v) => num(v) },
  { id: "revenue", title: "Revenue", show: (v) => money(v) },
  { id: "arpu", title: "ARPU", show: (v) => money(v) },
  { id: "data_gb", title: "Data (GB)", show: (v) => num(v, 1) },
  { id: "call_drop_rate", title: "Call-drop rate", show: (v) => pct(v, 2) },
  { id: "churned", title: "Churned subscribers", show: (v) => num(v) },
];

const value = (p: GeoPlace, m: string): number | null => (typeof p[m] === "number" ? (p[m] as number) : null);

function label(p: GeoPlace): string {
  const where = p.country ? `${p.name}, ${p.country}` : p.name;
  return where + ": " + kMeasures.map((m) => `${m.title.toLowerCase()} ${m.show(value(p, m.id))}`).join(", ");
}

/** The places with coordinates and subscribers under the filters (others are left off). */
function places(list: GeoPlace[], colour: string, kind: string): Place[] {
  return list
    .filter((p) => p.latitude !== null && p.longitude !== null && (value(p, "active_subscribers") ?? 0) > 0)
    .map((p) => ({
      key: kind + ":" + p.name,
      label: label(p),
      latitude: p.latitude as number,
      longitude: p.longitude as number,
      size: value(p, "active_subscribers") ?? 0,
      colour: value(p, colour),
      kind,
    }));
}

function scaleOf(list: Place[]): Scale {
  const v = list.map((p) => p.colour).filter((x): x is number => x !== null);
  return v.length ? { min: Math.min(...v), max: Math.max(...v) } : { min: 0, max: 1 };
}

const kColumns = ["level", "name", "country", "region", "latitude", "longitude", ...kMeasures.map((m) => m.id)];
const row = (level: string, p: GeoPlace) => [level, p.name, p.country ?? "", p.region ?? p.name, p.latitude, p.longitude, ...kMeasures.map((m) => value(p, m.id))];

export async function geoTab(root: HTMLElement, filters: FilterState): Promise<void> {
  const { api } = filters.session;
  const v = filters.value;
  const world = new Card("geo-world", "Regions and cities", { wide: true, note: "Each region sits at the centre of its cities (the grey dots)." });
  const us = new Card("geo-us", "United States: cities", { wide: true });
  const regions = new Card("geo-regions", "By region");
  const cities = new Card("geo-cities", "Cities");
  const picker = h("select", { id: "geo-measure", "data-measure": "" }, ...kMeasures.map((m) => h("option", { value: m.id }, m.title)));
  picker.value = sessionStorage.getItem("tally.geo.measure") ?? "revenue";
  if (!kMeasures.some((m) => m.id === picker.value)) picker.value = "revenue";
  root.append(
    h("form", { class: "filters", "aria-label": "Map colour", onsubmit: ((e: Event) => e.preventDefault()) as EventListener }, h("label", {}, "Colour by", picker)),
    h("div", { class: "grid" }, world.root, us.root, regions.root, cities.root),
  );
  for (const c of [world, us, regions, cities]) c.loading();
  let report: GeoReport;
  try {
    report = await api.get<GeoReport>("/v1/insights/geo", { ...filters.params(), partner: v.partner, plan: v.plan, region: v.region });
  } catch (e) {
    for (const c of [world, us, regions, cities]) c.error(e);
    return;
  }
  const withSubscribers = (p: GeoPlace) => (value(p, "active_subscribers") ?? 0) > 0;
  const regionRows = report.regions.filter(withSubscribers);
  const cityRows = report.cities.filter(withSubscribers);

  const draw = async () => {
    const measure = kMeasures.find((m) => m.id === picker.value) ?? kMeasures[0];
    sessionStorage.setItem("tally.geo.measure", measure.id);
    const regionPlaces = places(regionRows, measure.id, "region");
    const cityPlaces = places(cityRows, measure.id, "city");
    const usPlaces = places(cityRows.filter((c) => c.country === "US"), measure.id, "city");
    const sizeName = "active subscribers";
    try {
      if (regionPlaces.length + cityPlaces.length === 0) {
        world.empty("No subscribers in any region for these filters.");
      } else {
        // Regions are the bubbles; cities are grey dots (their values are in the tables and the
        // US map): a region's total is not comparable with a city's.
        const dots = cityPlaces.map((p) => ({ ...p, size: 0, colour: null }));
        const map = await worldMap([...dots, ...regionPlaces], scaleOf(regionPlaces), "World map: " + measure.title + " by region");
        world.ready({ columns: kColumns, rows: [...regionRows.map((p) => row("region", p)), ...cityRows.map((p) => row("city", p))] });
        world.root.dataset.rows = String(map.drawn);
        world.body.append(map.element, legend(measure.title, scaleOf(regionPlaces), (x) => measure.show(x), sizeName));
      }
      if (usPlaces.length === 0) {
        us.empty("No subscribers in US cities for these filters.");
      } else {
        const map = await usMap(usPlaces, scaleOf(usPlaces), "Map of the United States: " + measure.title + " by city");
        us.ready({ columns: kColumns, rows: cityRows.filter((c) => c.country === "US").map((p) => row("city", p)) });
        us.root.dataset.rows = String(map.drawn);
        us.body.append(map.element, legend(measure.title, scaleOf(usPlaces), (x) => measure.show(x), sizeName));
      }
    } catch (e) {
      world.error(e);
      us.error(e);
    }
    if (cityRows.length === 0) {
      cities.empty();
    } else {
      const top = [...cityRows].sort((a, b) => (value(b, measure.id) ?? -Infinity) - (value(a, measure.id) ?? -Infinity));
      cities.ready({ columns: kColumns, rows: top.map((p) => row("city", p)) });
      cities.body.append(
        table(
          ["City", "Country", measure.title, "Active subscribers"],
          top.slice(0, 15).map((p) => [p.name, p.country ?? "", measure.show(value(p, measure.id)), num(value(p, "active_subscribers"))]),
          `The 15 cities with the highest ${measure.title.toLowerCase()}, of ${top.length}`,
        ),
      );
    }
  };

  if (regionRows.length === 0) {
    regions.empty();
  } else {
    regions.ready({ columns: kColumns, rows: regionRows.map((p) => row("region", p)) });
    regions.body.append(table(["Region", ...kMeasures.map((m) => m.title)], regionRows.map((p) => [p.name, ...kMeasures.map((m) => m.show(value(p, m.id)))])));
  }
  picker.addEventListener("change", () => void draw());
  await draw();
}
