#include "metrics/catalogue.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <set>

namespace tally {

extern const char kCatalogueToml[];

namespace {

constexpr std::array<std::string_view, kRollupTableCount> kRollupNames = {
    "segment_day", "segment_5m", "subscriber_day", "subscriber_month"};
constexpr std::array<std::string_view, kRollupTableCount> kRollupStoreTables = {
    "rollup_segment_day", "rollup_segment_5m", "rollup_subscriber_day", "rollup_subscriber_month"};
constexpr std::array<std::string_view, 7> kGranularityNames = {"minute", "5minute", "hour", "day",
                                                               "week",   "month",   "year"};

const std::set<std::string_view> kMeasureKeys = {"name",   "title",      "description", "unit",
                                                 "rollup", "rollups",    "family",      "sql",
                                                 "ratio",  "rollup_when"};
const std::set<std::string_view> kDimensionKeys = {
    "name", "title", "type", "rollup", "rollup_when", "tables", "raw", "raw_when", "families"};

// A key's string value; errors name the entry and the key.
Result<std::string> Text(const toml::table& t, std::string_view key, const std::string& where,
                         bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) return Status::InvalidArgument(where + ": '" + std::string(key) + "' is missing");
    return std::string();
  }
  const auto* s = n->as_string();
  if (!s) return Status::InvalidArgument(where + ": '" + std::string(key) + "' must be a string");
  return s->get();
}

Result<std::vector<std::string>> Texts(const toml::table& t, std::string_view key,
                                       const std::string& where) {
  std::vector<std::string> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  const auto* arr = n->as_array();
  if (!arr) return Status::InvalidArgument(where + ": '" + std::string(key) + "' must be an array");
  for (const auto& item : *arr) {
    const auto* s = item.as_string();
    if (!s) {
      return Status::InvalidArgument(where + ": '" + std::string(key) + "' must hold strings only");
    }
    out.push_back(s->get());
  }
  return out;
}

Result<std::vector<RollupTable>> Tables(const std::vector<std::string>& names,
                                        const std::string& where) {
  std::vector<RollupTable> out;
  for (const std::string& n : names) {
    auto it = std::find(kRollupNames.begin(), kRollupNames.end(), n);
    if (it == kRollupNames.end()) {
      return Status::InvalidArgument(where + ": '" + n +
                                     "' is not a rollup table (segment_day, segment_5m, "
                                     "subscriber_day, subscriber_month)");
    }
    out.push_back(static_cast<RollupTable>(it - kRollupNames.begin()));
  }
  // By default: the counter rollups (the activity rollup holds no counters).
  if (out.empty())
    out = {RollupTable::kSegmentDay, RollupTable::kSegment5m, RollupTable::kSubscriberDay};
  return out;
}

// A `rollup_when` table of an entry: {table = expression}.
Result<std::vector<std::pair<RollupTable, std::string>>> RollupWhen(const toml::table& t,
                                                                    const std::string& where) {
  std::vector<std::pair<RollupTable, std::string>> out;
  const toml::node* n = t.get("rollup_when");
  if (!n) return out;
  const toml::table* when = n->as_table();
  if (!when) {
    return Status::InvalidArgument(where + ": 'rollup_when' must be a table {table = expr}");
  }
  for (const auto& [name, expr] : *when) {
    const std::string key(name.str());
    const auto* e = expr.as_string();
    if (!e) return Status::InvalidArgument(where + ": rollup_when." + key + " must be a string");
    TALLY_ASSIGN_OR_RETURN(auto table, Tables({key}, where + ": rollup_when"));
    out.emplace_back(table.front(), e->get());
  }
  return out;
}

Status CheckKeys(const toml::table& t, const std::set<std::string_view>& allowed,
                 const std::string& where) {
  for (const auto& [k, v] : t) {
    if (!allowed.count(k.str())) {
      return Status::InvalidArgument(where + ": unknown key '" + std::string(k.str()) + "'");
    }
  }
  return Status::Ok();
}

bool IsName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  }
  return s[0] >= 'a' && s[0] <= 'z';
}

}  // namespace

std::string_view Name(RollupTable t) {
  return kRollupNames[static_cast<size_t>(t)];
}
std::string_view StoreTable(RollupTable t) {
  return kRollupStoreTables[static_cast<size_t>(t)];
}
std::string_view Name(Granularity g) {
  return kGranularityNames[static_cast<size_t>(g)];
}

std::optional<Granularity> GranularityNamed(std::string_view name) {
  for (size_t i = 0; i < kGranularityNames.size(); ++i) {
    if (kGranularityNames[i] == name) return static_cast<Granularity>(i);
  }
  return std::nullopt;
}

bool MeasureDef::OnRollup(RollupTable t) const {
  for (const auto& [table, expr] : rollup_when) {
    if (table == t) return true;
  }
  return !rollup.empty() &&
         std::find(rollup_tables.begin(), rollup_tables.end(), t) != rollup_tables.end();
}

const std::string& MeasureDef::RollupOn(RollupTable t) const {
  for (const auto& [table, expr] : rollup_when) {
    if (table == t) return expr;
  }
  return rollup;
}

bool DimensionDef::OnRollup(RollupTable t) const {
  for (const auto& [table, expr] : rollup_when) {
    if (table == t) return true;
  }
  return !rollup.empty() &&
         std::find(rollup_tables.begin(), rollup_tables.end(), t) != rollup_tables.end();
}

bool DimensionDef::OnFamily(EventFamily f) const {
  return !raw.empty() &&
         (families.empty() || std::find(families.begin(), families.end(), f) != families.end());
}

Result<MetricCatalogue> MetricCatalogue::Parse(std::string_view toml_text,
                                               std::string_view source) {
  toml::table root;
  try {
    root = toml::parse(toml_text, source);
  } catch (const toml::parse_error& err) {
    return Status::InvalidArgument(std::string(source) + ":" +
                                   std::to_string(err.source().begin.line) + ": " +
                                   std::string(err.description()));
  }
  MetricCatalogue c;
  for (const auto& [k, v] : root) {
    if (k.str() != "measure" && k.str() != "dimension") {
      return Status::InvalidArgument(std::string(source) + ": unknown section '" +
                                     std::string(k.str()) +
                                     "' (expected [[measure]] or "
                                     "[[dimension]])");
    }
  }
  auto entries = [&](std::string_view key) -> std::vector<const toml::table*> {
    std::vector<const toml::table*> out;
    if (const auto* arr = root[key].as_array()) {
      for (const auto& n : *arr) out.push_back(n.as_table());
    }
    return out;
  };
  int i = 0;
  for (const toml::table* t : entries("measure")) {
    ++i;
    std::string where = std::string(source) + ": measure " + std::to_string(i);
    if (!t) return Status::InvalidArgument(where + " is not a table");
    MeasureDef m;
    TALLY_ASSIGN_OR_RETURN(m.name, Text(*t, "name", where, true));
    where += " ('" + m.name + "')";
    if (!IsName(m.name)) {
      return Status::InvalidArgument(where + ": a name is lower case letters, digits and _");
    }
    TALLY_RETURN_IF_ERROR(CheckKeys(*t, kMeasureKeys, where));
    TALLY_ASSIGN_OR_RETURN(m.title, Text(*t, "title", where, true));
    TALLY_ASSIGN_OR_RETURN(m.description, Text(*t, "description", where, false));
    TALLY_ASSIGN_OR_RETURN(m.unit, Text(*t, "unit", where, true));
    TALLY_ASSIGN_OR_RETURN(m.rollup, Text(*t, "rollup", where, false));
    TALLY_ASSIGN_OR_RETURN(auto tables, Texts(*t, "rollups", where));
    TALLY_ASSIGN_OR_RETURN(m.rollup_tables, Tables(tables, where));
    TALLY_ASSIGN_OR_RETURN(m.rollup_when, RollupWhen(*t, where));
    TALLY_ASSIGN_OR_RETURN(std::string family, Text(*t, "family", where, false));
    TALLY_ASSIGN_OR_RETURN(m.sql, Text(*t, "sql", where, false));
    TALLY_ASSIGN_OR_RETURN(m.ratio, Texts(*t, "ratio", where));
    if (!family.empty()) {
      auto f = ParseEnum<EventFamily>(family);
      if (!f.ok()) return f.status().WithContext(where + ": family");
      m.family = *f;
    }
    if (m.family.has_value() != !m.sql.empty()) {
      return Status::InvalidArgument(where + ": 'family' and 'sql' go together");
    }
    if (m.is_ratio()) {
      if (m.ratio.size() != 2 || !m.rollup.empty() || !m.rollup_when.empty() || m.family) {
        return Status::InvalidArgument(
            where + ": a ratio is [numerator, denominator] and has no rollup, family or sql");
      }
    } else if (!m.family) {
      return Status::InvalidArgument(where + ": needs family and sql (raw events), or a ratio");
    }
    if (c.measure_index_.count(m.name)) {
      return Status::InvalidArgument(where + ": defined twice");
    }
    c.measure_index_[m.name] = c.measures_.size();
    c.measures_.push_back(std::move(m));
  }
  for (const MeasureDef& m : c.measures_) {
    for (const std::string& part : m.ratio) {
      const MeasureDef* p = c.FindMeasure(part);
      if (!p) {
        return Status::InvalidArgument(std::string(source) + ": measure '" + m.name +
                                       "': ratio names unknown measure '" + part + "'");
      }
      if (p->is_ratio()) {
        return Status::InvalidArgument(std::string(source) + ": measure '" + m.name +
                                       "': a ratio of a ratio is not supported ('" + part + "')");
      }
    }
  }
  i = 0;
  for (const toml::table* t : entries("dimension")) {
    ++i;
    std::string where = std::string(source) + ": dimension " + std::to_string(i);
    if (!t) return Status::InvalidArgument(where + " is not a table");
    DimensionDef d;
    TALLY_ASSIGN_OR_RETURN(d.name, Text(*t, "name", where, true));
    where += " ('" + d.name + "')";
    if (!IsName(d.name) || d.name == "time") {
      return Status::InvalidArgument(
          where + ": a name is lower case letters, digits and _, and 'time' is built in");
    }
    TALLY_RETURN_IF_ERROR(CheckKeys(*t, kDimensionKeys, where));
    TALLY_ASSIGN_OR_RETURN(d.title, Text(*t, "title", where, true));
    TALLY_ASSIGN_OR_RETURN(std::string type, Text(*t, "type", where, true));
    if (type != "number" && type != "string") {
      return Status::InvalidArgument(where + ": type is 'number' or 'string', not '" + type + "'");
    }
    d.numeric = type == "number";
    TALLY_ASSIGN_OR_RETURN(d.rollup, Text(*t, "rollup", where, false));
    TALLY_ASSIGN_OR_RETURN(auto tables, Texts(*t, "tables", where));
    TALLY_ASSIGN_OR_RETURN(d.rollup_tables, Tables(tables, where));
    TALLY_ASSIGN_OR_RETURN(d.raw, Text(*t, "raw", where, false));
    TALLY_ASSIGN_OR_RETURN(d.rollup_when, RollupWhen(*t, where));
    if (const toml::node* n = t->get("raw_when")) {
      const toml::table* when = n->as_table();
      if (!when) {
        return Status::InvalidArgument(where + ": 'raw_when' must be a table {column = expr}");
      }
      for (const auto& [name, expr] : *when) {
        const std::string key(name.str());
        const auto* e = expr.as_string();
        if (!e) return Status::InvalidArgument(where + ": raw_when." + key + " must be a string");
        auto family = ParseEnum<EventFamily>(key);
        if (!family.ok()) return family.status().WithContext(where + ": raw_when");
        d.raw_when.emplace_back(*family, e->get());
      }
    }
    TALLY_ASSIGN_OR_RETURN(auto families, Texts(*t, "families", where));
    for (const std::string& f : families) {
      auto parsed = ParseEnum<EventFamily>(f);
      if (!parsed.ok()) return parsed.status().WithContext(where + ": families");
      d.families.push_back(*parsed);
    }
    if (d.rollup.empty() && d.rollup_when.empty() && d.raw.empty()) {
      return Status::InvalidArgument(where + ": needs a rollup or a raw expression");
    }
    if (c.dimension_index_.count(d.name)) {
      return Status::InvalidArgument(where + ": defined twice");
    }
    c.dimension_index_[d.name] = c.dimensions_.size();
    c.dimensions_.push_back(std::move(d));
  }
  return c;
}

const MetricCatalogue& MetricCatalogue::Builtin() {
  static const MetricCatalogue* builtin = [] {
    auto parsed = Parse(kCatalogueToml, "src/metrics/catalogue.toml");
    // The built-in catalogue is checked by a unit test; a broken one is a build defect.
    if (!parsed.ok()) {
      std::fprintf(stderr, "tally: the built-in metric catalogue is invalid: %s\n",
                   parsed.status().ToString().c_str());
      std::abort();
    }
    return new MetricCatalogue(std::move(*parsed));
  }();
  return *builtin;
}

const MeasureDef* MetricCatalogue::FindMeasure(std::string_view name) const {
  auto it = measure_index_.find(name);
  return it == measure_index_.end() ? nullptr : &measures_[it->second];
}

const DimensionDef* MetricCatalogue::FindDimension(std::string_view name) const {
  auto it = dimension_index_.find(name);
  return it == dimension_index_.end() ? nullptr : &dimensions_[it->second];
}

std::string MetricCatalogue::ToJson() const {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&](const char* key, std::string_view v) {
    w.Key(key);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  // Every rollup table the entry is answered on (its own list and its rollup_when tables).
  auto tables = [&](const char* key, const auto& def) {
    w.Key(key);
    w.StartArray();
    for (int i = 0; i < kRollupTableCount; ++i) {
      const auto t = static_cast<RollupTable>(i);
      if (def.OnRollup(t)) w.String(Name(t).data(), static_cast<unsigned>(Name(t).size()));
    }
    w.EndArray();
  };
  w.StartObject();
  w.Key("measures");
  w.StartArray();
  for (const MeasureDef& m : measures_) {
    w.StartObject();
    str("name", m.name);
    str("title", m.title);
    str("description", m.description);
    str("unit", m.unit);
    if (m.is_ratio()) {
      w.Key("ratio");
      w.StartArray();
      for (const std::string& p : m.ratio) w.String(p.c_str());
      w.EndArray();
    } else {
      tables("rollups", m);
      str("family", Name(*m.family));
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("dimensions");
  w.StartArray();
  w.StartObject();
  str("name", "time");
  str("title", "Time");
  str("type", "time");
  w.Key("granularities");
  w.StartArray();
  for (auto g : kGranularityNames) w.String(g.data(), static_cast<unsigned>(g.size()));
  w.EndArray();
  w.EndObject();
  for (const DimensionDef& d : dimensions_) {
    w.StartObject();
    str("name", d.name);
    str("title", d.title);
    str("type", d.numeric ? "number" : "string");
    tables("rollups", d);
    w.Key("raw");
    w.Bool(!d.raw.empty());
    if (!d.families.empty()) {
      w.Key("families");
      w.StartArray();
      for (EventFamily f : d.families)
        w.String(Name(f).data(), static_cast<unsigned>(Name(f).size()));
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return sb.GetString();
}

}  // namespace tally
