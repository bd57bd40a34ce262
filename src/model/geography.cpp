#include "model/geography.h"

#include <array>

namespace tally {

namespace {

using R = Region;

// Coordinates are city centres (WGS 84); populations are rounded city-proper figures in millions.
constexpr std::array kCities = {
    City{CityId(1), "New York", "US", R::kNorthAmerica, 40.7128, -74.0060, 8.3},
    City{CityId(2), "Los Angeles", "US", R::kNorthAmerica, 34.0522, -118.2437, 3.9},
    City{CityId(3), "Chicago", "US", R::kNorthAmerica, 41.8781, -87.6298, 2.7},
    City{CityId(4), "Houston", "US", R::kNorthAmerica, 29.7604, -95.3698, 2.3},
    City{CityId(5), "Phoenix", "US", R::kNorthAmerica, 33.4484, -112.0740, 1.6},
    City{CityId(6), "Philadelphia", "US", R::kNorthAmerica, 39.9526, -75.1652, 1.6},
    City{CityId(7), "San Antonio", "US", R::kNorthAmerica, 29.4241, -98.4936, 1.5},
    City{CityId(8), "San Diego", "US", R::kNorthAmerica, 32.7157, -117.1611, 1.4},
    City{CityId(9), "Dallas", "US", R::kNorthAmerica, 32.7767, -96.7970, 1.3},
    City{CityId(10), "San Francisco", "US", R::kNorthAmerica, 37.7749, -122.4194, 0.8},
    City{CityId(11), "Seattle", "US", R::kNorthAmerica, 47.6062, -122.3321, 0.75},
    City{CityId(12), "Denver", "US", R::kNorthAmerica, 39.7392, -104.9903, 0.7},
    City{CityId(13), "Boston", "US", R::kNorthAmerica, 42.3601, -71.0589, 0.65},
    City{CityId(14), "Atlanta", "US", R::kNorthAmerica, 33.7490, -84.3880, 0.5},
    City{CityId(15), "Miami", "US", R::kNorthAmerica, 25.7617, -80.1918, 0.45},
    City{CityId(16), "Toronto", "CA", R::kNorthAmerica, 43.6532, -79.3832, 2.8},
    City{CityId(17), "Montreal", "CA", R::kNorthAmerica, 45.5017, -73.5673, 1.8},
    City{CityId(18), "Vancouver", "CA", R::kNorthAmerica, 49.2827, -123.1207, 0.66},
    City{CityId(19), "London", "GB", R::kEurope, 51.5074, -0.1278, 8.9},
    City{CityId(20), "Paris", "FR", R::kEurope, 48.8566, 2.3522, 2.1},
    City{CityId(21), "Berlin", "DE", R::kEurope, 52.5200, 13.4050, 3.7},
    City{CityId(22), "Munich", "DE", R::kEurope, 48.1351, 11.5820, 1.5},
    City{CityId(23), "Madrid", "ES", R::kEurope, 40.4168, -3.7038, 3.3},
    City{CityId(24), "Rome", "IT", R::kEurope, 41.9028, 12.4964, 2.8},
    City{CityId(25), "Milan", "IT", R::kEurope, 45.4642, 9.1900, 1.4},
    City{CityId(26), "Amsterdam", "NL", R::kEurope, 52.3676, 4.9041, 0.9},
    City{CityId(27), "Warsaw", "PL", R::kEurope, 52.2297, 21.0122, 1.8},
    City{CityId(28), "Stockholm", "SE", R::kEurope, 59.3293, 18.0686, 0.98},
    City{CityId(29), "Tokyo", "JP", R::kApac, 35.6762, 139.6503, 14.0},
    City{CityId(30), "Seoul", "KR", R::kApac, 37.5665, 126.9780, 9.7},
    City{CityId(31), "Singapore", "SG", R::kApac, 1.3521, 103.8198, 5.7},
    City{CityId(32), "Sydney", "AU", R::kApac, -33.8688, 151.2093, 5.3},
    City{CityId(33), "Mumbai", "IN", R::kApac, 19.0760, 72.8777, 12.4},
    City{CityId(34), "Jakarta", "ID", R::kApac, -6.2088, 106.8456, 10.6},
    City{CityId(35), "Bangkok", "TH", R::kApac, 13.7563, 100.5018, 10.5},
    City{CityId(36), "Manila", "PH", R::kApac, 14.5995, 120.9842, 1.8},
    City{CityId(37), "Auckland", "NZ", R::kApac, -36.8485, 174.7633, 1.7},
    City{CityId(38), "Sao Paulo", "BR", R::kLatam, -23.5505, -46.6333, 12.3},
    City{CityId(39), "Rio de Janeiro", "BR", R::kLatam, -22.9068, -43.1729, 6.7},
    City{CityId(40), "Mexico City", "MX", R::kLatam, 19.4326, -99.1332, 9.2},
    City{CityId(41), "Buenos Aires", "AR", R::kLatam, -34.6037, -58.3816, 3.1},
    City{CityId(42), "Bogota", "CO", R::kLatam, 4.7110, -74.0721, 7.4},
    City{CityId(43), "Lima", "PE", R::kLatam, -12.0464, -77.0428, 9.7},
    City{CityId(44), "Santiago", "CL", R::kLatam, -33.4489, -70.6693, 6.2},
};

// Mobile numbers use at least ten national digits so every subscriber id up to 10^9 maps to a
// distinct number (see the generator's MSISDN scheme).
constexpr std::array kCountries = {
    Country{"US", "United States", "1", "310", 10},  Country{"CA", "Canada", "1", "302", 10},
    Country{"GB", "United Kingdom", "44", "234", 10}, Country{"FR", "France", "33", "208", 10},
    Country{"DE", "Germany", "49", "262", 11},        Country{"ES", "Spain", "34", "214", 10},
    Country{"IT", "Italy", "39", "222", 10},          Country{"NL", "Netherlands", "31", "204", 10},
    Country{"PL", "Poland", "48", "260", 10},         Country{"SE", "Sweden", "46", "240", 10},
    Country{"JP", "Japan", "81", "440", 10},          Country{"KR", "South Korea", "82", "450", 10},
    Country{"SG", "Singapore", "65", "525", 10},      Country{"AU", "Australia", "61", "505", 10},
    Country{"IN", "India", "91", "404", 10},          Country{"ID", "Indonesia", "62", "510", 11},
    Country{"TH", "Thailand", "66", "520", 10},       Country{"PH", "Philippines", "63", "515", 10},
    Country{"NZ", "New Zealand", "64", "530", 10},    Country{"BR", "Brazil", "55", "724", 11},
    Country{"MX", "Mexico", "52", "334", 10},         Country{"AR", "Argentina", "54", "722", 10},
    Country{"CO", "Colombia", "57", "732", 10},       Country{"PE", "Peru", "51", "716", 10},
    Country{"CL", "Chile", "56", "730", 10},          Country{"PT", "Portugal", "351", "268", 10},
    Country{"GR", "Greece", "30", "202", 10},         Country{"TR", "Turkey", "90", "286", 10},
    Country{"AE", "United Arab Emirates", "971", "424", 10},
    Country{"CN", "China", "86", "460", 11},          Country{"DO", "Dominican Republic", "1", "370", 10},
    Country{"CH", "Switzerland", "41", "228", 10},
};

constexpr std::array<std::string_view, 8> kFromNorthAmerica = {"MX", "GB", "FR", "IT", "ES", "DO", "JP", "DE"};
constexpr std::array<std::string_view, 8> kFromEurope = {"ES", "IT", "PT", "GR", "TR", "US", "CH", "AE"};
constexpr std::array<std::string_view, 8> kFromApac = {"JP", "TH", "SG", "AU", "US", "KR", "CN", "NZ"};
constexpr std::array<std::string_view, 8> kFromLatam = {"US", "ES", "MX", "BR", "AR", "CL", "PT", "IT"};

}  // namespace

std::span<const City> Cities() { return kCities; }
std::span<const Country> Countries() { return kCountries; }

const Country* FindCountry(std::string_view iso2) {
  for (const auto& c : kCountries) {
    if (c.iso2 == iso2) return &c;
  }
  return nullptr;
}

std::span<const std::string_view> RoamingDestinations(Region home) {
  switch (home) {
    case Region::kNorthAmerica: return kFromNorthAmerica;
    case Region::kEurope: return kFromEurope;
    case Region::kApac: return kFromApac;
    case Region::kLatam: return kFromLatam;
  }
  return kFromNorthAmerica;
}

}  // namespace tally
