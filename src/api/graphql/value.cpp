#include "api/graphql/value.h"

#include <simdjson.h>

#include <cmath>

namespace tally::graphql {

const Value* Value::Find(std::string_view name) const {
  if (!is_object()) return nullptr;
  for (const Member& m : as_object()) {
    if (m.first == name) return &m.second;
  }
  return nullptr;
}

void Value::WriteJson(TextBuffer& out) const {
  if (is_null()) {
    out.Put("null");
  } else if (is_bool()) {
    out.Put(as_bool() ? "true" : "false");
  } else if (is_int()) {
    out.PutInt(as_int());
  } else if (is_float()) {
    const double d = std::get<double>(v_);
    if (std::isfinite(d)) {
      out.PutDouble(d);
    } else {
      out.Put("null");
    }
  } else if (is_string()) {
    out.PutJsonString(as_string());
  } else if (is_list()) {
    out.Put('[');
    bool first = true;
    for (const Value& v : as_list()) {
      if (!first) out.Put(',');
      first = false;
      v.WriteJson(out);
    }
    out.Put(']');
  } else {
    out.Put('{');
    bool first = true;
    for (const Member& m : as_object()) {
      if (!first) out.Put(',');
      first = false;
      out.PutJsonString(m.first);
      out.Put(':');
      m.second.WriteJson(out);
    }
    out.Put('}');
  }
}

std::string Value::ToJson() const {
  TextBuffer out(256);
  WriteJson(out);
  return std::string(out.view());
}

namespace {

Value FromElement(simdjson::dom::element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      Value::List list;
      for (simdjson::dom::element x : simdjson::dom::array(e)) list.push_back(FromElement(x));
      return Value(std::move(list));
    }
    case simdjson::dom::element_type::OBJECT: {
      Value::Object obj;
      for (auto [k, v] : simdjson::dom::object(e)) obj.emplace_back(std::string(k), FromElement(v));
      return Value(std::move(obj));
    }
    case simdjson::dom::element_type::INT64:
      return Value(int64_t(e));
    case simdjson::dom::element_type::UINT64:
      return Value(static_cast<double>(uint64_t(e)));
    case simdjson::dom::element_type::DOUBLE:
      return Value(double(e));
    case simdjson::dom::element_type::STRING:
      return Value(std::string(std::string_view(e)));
    case simdjson::dom::element_type::BOOL:
      return Value(bool(e));
    case simdjson::dom::element_type::NULL_VALUE:
      return Value();
  }
  return Value();
}

}  // namespace

Result<Value> Value::FromJson(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::padded_string text(json);
  simdjson::dom::element doc;
  if (auto err = parser.parse(text).get(doc); err != simdjson::SUCCESS) {
    return Status::InvalidArgument(std::string("not valid JSON: ") + simdjson::error_message(err));
  }
  return FromElement(doc);
}

}  // namespace tally::graphql
