// The parts of d3-geo and topojson-client the maps use (neither package ships TypeScript types,
// and Debian/npm @types would add two more pinned dependencies for a dozen lines).

declare module "d3-geo" {
  export interface GeoProjection {
    (point: [number, number]): [number, number] | null;
    fitSize(size: [number, number], object: unknown): this;
    rotate(angles: [number, number] | [number, number, number]): this;
  }
  export interface GeoPath {
    (object: unknown): string | null;
  }
  export function geoNaturalEarth1(): GeoProjection;
  export function geoAlbersUsa(): GeoProjection;
  export function geoPath(projection?: GeoProjection): GeoPath;
  export function geoGraticule10(): unknown;
}

declare module "topojson-client" {
  export interface Feature {
    type: "Feature";
    id?: string | number;
    properties: { name?: string };
    geometry: unknown;
  }
  export interface FeatureCollection {
    type: "FeatureCollection";
    features: Feature[];
  }
  export function feature(topology: unknown, object: unknown): FeatureCollection;
  export function mesh(topology: unknown, object: unknown, filter?: (a: unknown, b: unknown) => boolean): unknown;
}
