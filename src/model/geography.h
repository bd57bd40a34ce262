#pragma once
// Where subscribers live and travel: regions, countries (with dialling codes and mobile country
// codes) and cities with their real coordinates. This is reference data, compiled in.

#include <span>
#include <string_view>

#include "model/field.h"

namespace tally {

//! A country the operator serves or its subscribers roam to.
struct Country {
  std::string_view iso2;      // ISO 3166-1 alpha-2
  std::string_view name;
  std::string_view dial_code;  // E.164 country code without '+'
  std::string_view mcc;        // ITU mobile country code
  int national_digits;         // digits after the country code in a mobile number
};

//! A city where the operator has subscribers and cell sites.
struct City {
  CityId city_id;
  std::string_view name;
  std::string_view country;  // ISO 3166-1 alpha-2
  Region region;
  double latitude;
  double longitude;
  double population_m;  // millions, for weighting where subscribers live
};

//! All served cities, ordered by city_id (1-based, stable).
std::span<const City> Cities();
//! All countries known (served and roaming destinations).
std::span<const Country> Countries();
//! The country with this ISO code, or nullptr.
const Country* FindCountry(std::string_view iso2);
//! Popular roaming destinations for travellers from a region (never the home country).
std::span<const std::string_view> RoamingDestinations(Region home);

//! A row of the cities table written beside the data.
struct CityRow {
  CityId city_id;
  std::string name;
  std::string country;
  Region region = Region::kNorthAmerica;
  double latitude = 0;
  double longitude = 0;

  static constexpr std::string_view kTable = "cities";
  static constexpr auto kFields = std::make_tuple(
      F("city_id", &CityRow::city_id, "", "City id."),
      F("name", &CityRow::name, "", "City name."),
      F("country", &CityRow::country, "ISO 3166-1 alpha-2", "Country."),
      F("region", &CityRow::region, "", "Commercial region."),
      F("latitude", &CityRow::latitude, "degrees", "City centre latitude (WGS 84)."),
      F("longitude", &CityRow::longitude, "degrees", "City centre longitude (WGS 84)."));
  friend bool operator==(const CityRow&, const CityRow&) = default;
};

//! A cell site (tower).
struct Tower {
  TowerId tower_id;
  CityId city_id;
  double latitude = 0;
  double longitude = 0;
  std::string technology;  // "4G" or "5G"

  static constexpr std::string_view kTable = "towers";
  static constexpr auto kFields = std::make_tuple(
      F("tower_id", &Tower::tower_id, "", "Cell site id."),
      F("city_id", &Tower::city_id, "", "City it serves."),
      F("latitude", &Tower::latitude, "degrees", "Site latitude (WGS 84)."),
      F("longitude", &Tower::longitude, "degrees", "Site longitude (WGS 84)."),
      F("technology", &Tower::technology, "", "Radio technology: 4G or 5G."));
  friend bool operator==(const Tower&, const Tower&) = default;
};

}  // namespace tally
