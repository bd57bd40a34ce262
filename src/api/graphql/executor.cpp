#include "api/graphql/executor.h"

#include <charconv>
#include <cmath>
#include <map>
#include <set>

#include "api/graphql/parser.h"

namespace tally::graphql {

namespace {

std::string Quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

bool IsInt32(double d) {
  return std::floor(d) == d && d >= INT32_MIN && d <= INT32_MAX;
}

bool CoerceLiteral(const Schema& schema, const AstValue& v, const TypeRef& type,
                   const Value& variables, Value* out);

// Input coercion (spec 3.5, 3.10, 3.11): a JSON value (variables) against an input type.
// Returns false with `why` set when it cannot be coerced.
bool CoerceInput(const Schema& schema, const Value& in, const TypeRef& type, Value* out,
                 std::string* why) {
  if (type.IsNonNull()) {
    if (in.is_null()) {
      *why = "Expected non-nullable type " + Quote(type.ToString()) + " not to be null.";
      return false;
    }
    return CoerceInput(schema, in, *type.of, out, why);
  }
  if (in.is_null()) {
    *out = Value();
    return true;
  }
  if (type.kind == TypeRef::Kind::kList) {
    Value::List items;
    if (in.is_list()) {
      for (const Value& item : in.as_list()) {
        Value v;
        if (!CoerceInput(schema, item, *type.of, &v, why)) return false;
        items.push_back(std::move(v));
      }
    } else {
      Value v;
      if (!CoerceInput(schema, in, *type.of, &v, why)) return false;
      items.push_back(std::move(v));
    }
    *out = Value(std::move(items));
    return true;
  }
  const TypeDef* t = schema.FindType(type.name);
  if (t == nullptr) {
    *why = "Unknown type " + Quote(type.name) + ".";
    return false;
  }
  const std::string json = in.ToJson().substr(0, 64);
  switch (t->kind) {
    case TypeKind::kInputObject: {
      if (!in.is_object()) {
        *why = "Expected type " + Quote(t->name) + " to be an object.";
        return false;
      }
      for (const auto& [name, v] : in.as_object()) {
        if (t->FindInputField(name) == nullptr) {
          *why = "Field " + Quote(name) + " is not defined by type " + Quote(t->name) + ".";
          return false;
        }
      }
      Value::Object obj;
      for (const InputValueDef& f : t->input_fields) {
        const Value* given = in.Find(f.name);
        if (given == nullptr) {
          if (f.default_value) {
            Value d;
            if (CoerceLiteral(schema, *f.default_value, f.type, Value(Value::Object{}), &d)) {
              obj.emplace_back(f.name, std::move(d));
            }
          } else if (f.type.IsNonNull()) {
            *why = "Field " + Quote(f.name) + " of required type " + Quote(f.type.ToString()) +
                   " was not provided.";
            return false;
          }
          continue;
        }
        Value v;
        if (!CoerceInput(schema, *given, f.type, &v, why)) {
          *why = "at " + Quote(f.name) + ": " + *why;
          return false;
        }
        obj.emplace_back(f.name, std::move(v));
      }
      *out = Value(std::move(obj));
      return true;
    }
    case TypeKind::kEnum:
      if (!in.is_string() || t->FindEnumValue(in.as_string()) == nullptr) {
        *why = "Value " + json + " does not exist in " + Quote(t->name) + " enum.";
        return false;
      }
      *out = in;
      return true;
    case TypeKind::kScalar:
      if (t->name == "Int") {
        if (!in.is_number() || !IsInt32(in.as_double())) {
          *why = "Int cannot represent non-integer or non 32-bit value: " + json;
          return false;
        }
        *out = Value(static_cast<int64_t>(in.as_double()));
      } else if (t->name == "Float") {
        if (!in.is_number()) {
          *why = "Float cannot represent non numeric value: " + json;
          return false;
        }
        *out = Value(in.as_double());
      } else if (t->name == "String") {
        if (!in.is_string()) {
          *why = "String cannot represent a non string value: " + json;
          return false;
        }
        *out = in;
      } else if (t->name == "Boolean") {
        if (!in.is_bool()) {
          *why = "Boolean cannot represent a non boolean value: " + json;
          return false;
        }
        *out = in;
      } else if (t->name == "ID") {
        if (in.is_string()) {
          *out = in;
        } else if (in.is_int()) {
          *out = Value(std::to_string(in.as_int()));
        } else {
          *why = "ID cannot represent value: " + json;
          return false;
        }
      } else {
        *out = in;  // custom scalars pass through
      }
      return true;
    default:
      *why = Quote(t->name) + " is not an input type.";
      return false;
  }
}

// Literal coercion (spec 3.x "input coercion" of literals, and 6.4.1 CoerceArgumentValues for
// variables inside literals). False when the literal cannot be coerced.
bool CoerceLiteral(const Schema& schema, const AstValue& v, const TypeRef& type,
                   const Value& variables, Value* out) {
  if (v.kind == AstValue::Kind::kVariable) {
    const Value* given = variables.Find(v.text);
    if (given == nullptr || given->is_null()) {
      if (type.IsNonNull()) return false;
      *out = Value();
      return true;
    }
    *out = *given;
    return true;
  }
  if (type.IsNonNull()) {
    if (v.kind == AstValue::Kind::kNull) return false;
    return CoerceLiteral(schema, v, *type.of, variables, out);
  }
  if (v.kind == AstValue::Kind::kNull) {
    *out = Value();
    return true;
  }
  if (type.kind == TypeRef::Kind::kList) {
    Value::List items;
    if (v.kind == AstValue::Kind::kList) {
      for (const AstValue& item : v.items) {
        Value x;
        if (!CoerceLiteral(schema, item, *type.of, variables, &x)) return false;
        items.push_back(std::move(x));
      }
    } else {
      Value x;
      if (!CoerceLiteral(schema, v, *type.of, variables, &x)) return false;
      items.push_back(std::move(x));
    }
    *out = Value(std::move(items));
    return true;
  }
  const TypeDef* t = schema.FindType(type.name);
  if (t == nullptr) return false;
  switch (t->kind) {
    case TypeKind::kInputObject: {
      if (v.kind != AstValue::Kind::kObject) return false;
      Value::Object obj;
      for (const InputValueDef& f : t->input_fields) {
        const AstValue* given = nullptr;
        for (size_t i = 0; i < v.names.size(); ++i) {
          if (v.names[i] == f.name) given = &v.items[i];
        }
        const bool missing_variable = given && given->kind == AstValue::Kind::kVariable &&
                                      variables.Find(given->text) == nullptr;
        if (given == nullptr || missing_variable) {
          if (f.default_value) {
            Value d;
            if (!CoerceLiteral(schema, *f.default_value, f.type, Value(Value::Object{}), &d)) {
              return false;
            }
            obj.emplace_back(f.name, std::move(d));
          } else if (f.type.IsNonNull()) {
            return false;
          }
          continue;
        }
        Value x;
        if (!CoerceLiteral(schema, *given, f.type, variables, &x)) return false;
        obj.emplace_back(f.name, std::move(x));
      }
      *out = Value(std::move(obj));
      return true;
    }
    case TypeKind::kEnum:
      if (v.kind != AstValue::Kind::kEnum || t->FindEnumValue(v.text) == nullptr) return false;
      *out = Value(v.text);
      return true;
    case TypeKind::kScalar:
      if (t->name == "Int") {
        int64_t n = 0;
        if (v.kind != AstValue::Kind::kInt) return false;
        auto [p, ec] = std::from_chars(v.text.data(), v.text.data() + v.text.size(), n);
        if (ec != std::errc() || n > INT32_MAX || n < INT32_MIN) return false;
        *out = Value(n);
      } else if (t->name == "Float") {
        if (v.kind != AstValue::Kind::kInt && v.kind != AstValue::Kind::kFloat) return false;
        *out = Value(std::strtod(v.text.c_str(), nullptr));
      } else if (t->name == "String") {
        if (v.kind != AstValue::Kind::kString) return false;
        *out = Value(v.text);
      } else if (t->name == "Boolean") {
        if (v.kind != AstValue::Kind::kBoolean) return false;
        *out = Value(v.text == "true");
      } else if (t->name == "ID") {
        if (v.kind != AstValue::Kind::kString && v.kind != AstValue::Kind::kInt) return false;
        *out = Value(v.text);
      } else {
        *out = Value(PrintValue(v));  // custom scalars see the literal as written
      }
      return true;
    default:
      return false;
  }
}

using Path = std::vector<PathSegment>;
using GroupedFields = std::vector<std::pair<std::string, std::vector<const Selection*>>>;

class Executor {
 public:
  Executor(const Schema& schema, const Document& doc, Value variables, void* user)
      : schema_(schema), vars_(std::move(variables)), ctx_{schema, user} {
    for (const FragmentDefinition& f : doc.fragments) fragments_.emplace(f.name, &f);
  }

  Value Run(const OperationDefinition& op) {
    const TypeDef* root = schema_.QueryType();
    Path path;
    std::optional<Value> data =
        ExecuteSelectionSet(op.selection_set, *root, Value(Value::Object{}), path);
    return data ? std::move(*data) : Value();
  }

  std::vector<GraphQLError>& errors() { return errors_; }

 private:
  void FieldError(std::string message, const Selection& field, const Path& path) {
    GraphQLError e;
    e.message = std::move(message);
    e.locations.push_back(field.loc);
    e.path = path;
    errors_.push_back(std::move(e));
  }

  // @skip(if:) and @include(if:) decide whether a selection is collected.
  bool Included(const std::vector<Directive>& directives) {
    for (const Directive& d : directives) {
      if (d.name != "skip" && d.name != "include") continue;
      for (const Argument& a : d.args) {
        if (a.name != "if") continue;
        Value v;
        if (!CoerceLiteral(schema_, a.value, TypeRef::Named("Boolean"), vars_, &v) ||
            !v.is_bool()) {
          continue;
        }
        if (d.name == "skip" && v.as_bool()) return false;
        if (d.name == "include" && !v.as_bool()) return false;
      }
    }
    return true;
  }

  bool FragmentApplies(const TypeDef& object, const std::string& condition) {
    if (condition.empty()) return true;
    const TypeDef* t = schema_.FindType(condition);
    if (t == nullptr) return false;
    if (t->kind == TypeKind::kObject) return t->name == object.name;
    return schema_.IsPossibleType(*t, object);
  }

  void CollectFields(const TypeDef& object, const SelectionSet& set, GroupedFields* out,
                     std::set<std::string>* visited) {
    for (const Selection& s : set.items) {
      if (!Included(s.directives)) continue;
      switch (s.kind) {
        case Selection::Kind::kField: {
          auto it = out->begin();
          while (it != out->end() && it->first != s.ResponseKey()) ++it;
          if (it == out->end()) {
            out->emplace_back(s.ResponseKey(), std::vector<const Selection*>{&s});
          } else {
            it->second.push_back(&s);
          }
          break;
        }
        case Selection::Kind::kInlineFragment:
          if (FragmentApplies(object, s.type_condition)) {
            CollectFields(object, s.selection_set, out, visited);
          }
          break;
        case Selection::Kind::kFragmentSpread: {
          if (!visited->insert(s.name).second) break;
          auto it = fragments_.find(s.name);
          if (it == fragments_.end()) break;
          if (!FragmentApplies(object, it->second->type_condition)) break;
          CollectFields(object, it->second->selection_set, out, visited);
          break;
        }
      }
    }
  }

  // nullopt: a non-null field below failed and this object must become null.
  std::optional<Value> ExecuteSelectionSet(const SelectionSet& set, const TypeDef& type,
                                           const Value& parent, Path& path) {
    GroupedFields fields;
    std::set<std::string> visited;
    CollectFields(type, set, &fields, &visited);
    return ExecuteFields(fields, type, parent, path);
  }

  std::optional<Value> ExecuteFields(const GroupedFields& fields, const TypeDef& type,
                                     const Value& parent, Path& path) {
    Value::Object out;
    for (const auto& [key, nodes] : fields) {
      const Selection& first = *nodes.front();
      const FieldDef* def = schema_.FieldOf(type, first.name);
      if (def == nullptr) continue;  // validation rules this out
      path.emplace_back(key);
      std::optional<Value> v = ExecuteField(type, parent, nodes, *def, path);
      path.pop_back();
      if (!v) return std::nullopt;
      out.emplace_back(key, std::move(*v));
    }
    return Value(std::move(out));
  }

  std::optional<Value> ExecuteField(const TypeDef& type, const Value& parent,
                                    const std::vector<const Selection*>& nodes, const FieldDef& def,
                                    Path& path) {
    const Selection& field = *nodes.front();
    Result<Value> resolved = Value();
    if (field.name == "__typename") {
      resolved = Value(type.name);
    } else {
      Value args(Value::Object{});
      std::string bad;
      for (const InputValueDef& a : def.args) {
        const Argument* given = nullptr;
        for (const Argument& g : field.args) {
          if (g.name == a.name) given = &g;
        }
        const bool missing_variable = given && given->value.kind == AstValue::Kind::kVariable &&
                                      vars_.Find(given->value.text) == nullptr;
        if (given == nullptr || missing_variable) {
          if (a.default_value) {
            Value d;
            if (CoerceLiteral(schema_, *a.default_value, a.type, Value(Value::Object{}), &d)) {
              args.Set(a.name, std::move(d));
            }
          } else if (a.type.IsNonNull()) {
            bad = "Argument " + Quote(a.name) + " of required type " + Quote(a.type.ToString()) +
                  " was not provided.";
          }
          continue;
        }
        Value v;
        if (!CoerceLiteral(schema_, given->value, a.type, vars_, &v)) {
          bad =
              "Argument " + Quote(a.name) + " has invalid value " + PrintValue(given->value) + ".";
          continue;
        }
        args.Set(a.name, std::move(v));
      }
      if (!bad.empty()) {
        resolved = Status::InvalidArgument(bad);
      } else if (def.resolve) {
        resolved = def.resolve(parent, args, ctx_);
      } else {
        const Value* member = parent.Find(field.name);
        resolved = member ? *member : Value();
      }
    }
    if (!resolved.ok()) {
      FieldError(resolved.status().message(), field, path);
      return def.type.IsNonNull() ? std::nullopt : std::optional<Value>(Value());
    }
    return CompleteValue(def.type, type, nodes, std::move(*resolved), path);
  }

  std::optional<Value> CompleteValue(const TypeRef& type, const TypeDef& parent_type,
                                     const std::vector<const Selection*>& nodes, Value value,
                                     Path& path) {
    if (type.IsNonNull()) {
      std::optional<Value> inner =
          CompleteInner(*type.of, parent_type, nodes, std::move(value), path);
      if (!inner) return std::nullopt;
      if (inner->is_null()) {
        FieldError("Cannot return null for non-nullable field " + parent_type.name + "." +
                       nodes.front()->name + ".",
                   *nodes.front(), path);
        return std::nullopt;
      }
      return inner;
    }
    std::optional<Value> inner = CompleteInner(type, parent_type, nodes, std::move(value), path);
    return inner ? std::move(inner) : std::optional<Value>(Value());
  }

  std::optional<Value> CompleteInner(const TypeRef& type, const TypeDef& parent_type,
                                     const std::vector<const Selection*>& nodes, Value value,
                                     Path& path) {
    if (value.is_null()) return Value();
    const Selection& field = *nodes.front();
    if (type.kind == TypeRef::Kind::kList) {
      if (!value.is_list()) {
        FieldError("Expected Iterable, but did not find one for field " + parent_type.name + "." +
                       field.name + ".",
                   field, path);
        return std::nullopt;
      }
      Value::List items;
      Value::List& in = value.as_list();
      for (size_t i = 0; i < in.size(); ++i) {
        path.emplace_back(static_cast<int64_t>(i));
        std::optional<Value> item =
            CompleteValue(*type.of, parent_type, nodes, std::move(in[i]), path);
        path.pop_back();
        if (!item) return std::nullopt;
        items.push_back(std::move(*item));
      }
      return Value(std::move(items));
    }
    const TypeDef* t = schema_.FindType(type.name);
    if (t == nullptr) return Value();
    if (t->IsLeaf()) {
      std::string why;
      std::optional<Value> out = Serialize(*t, value, &why);
      if (!out) FieldError(why, field, path);
      return out;
    }
    const TypeDef* object = t;
    if (t->IsAbstract()) {
      const Value* name = value.Find("__typename");
      object = name && name->is_string() ? schema_.FindType(name->as_string()) : nullptr;
      if (object == nullptr || object->kind != TypeKind::kObject ||
          !schema_.IsPossibleType(*t, *object)) {
        FieldError("Abstract type " + Quote(t->name) +
                       " must resolve to an Object type at "
                       "runtime for field " +
                       Quote(parent_type.name + "." + field.name) + ".",
                   field, path);
        return std::nullopt;
      }
    }
    GroupedFields fields;
    std::set<std::string> visited;
    for (const Selection* node : nodes) {
      CollectFields(*object, node->selection_set, &fields, &visited);
    }
    return ExecuteFields(fields, *object, value, path);
  }

  // Result coercion of leaf values (spec 3.5 "result coercion").
  std::optional<Value> Serialize(const TypeDef& t, const Value& v, std::string* why) {
    const std::string json = v.ToJson().substr(0, 64);
    if (t.kind == TypeKind::kEnum) {
      if (v.is_string() && t.FindEnumValue(v.as_string())) return v;
      *why = "Enum " + Quote(t.name) + " cannot represent value: " + json;
      return std::nullopt;
    }
    if (t.name == "Int") {
      if (v.is_bool()) return Value(int64_t{v.as_bool() ? 1 : 0});
      if (v.is_number() && IsInt32(v.as_double())) {
        return Value(static_cast<int64_t>(v.as_double()));
      }
      if (v.is_string()) {
        int64_t n = 0;
        const std::string& s = v.as_string();
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec == std::errc() && p == s.data() + s.size() && IsInt32(static_cast<double>(n))) {
          return Value(n);
        }
      }
      *why = "Int cannot represent non 32-bit signed integer value: " + json;
      return std::nullopt;
    }
    if (t.name == "Float") {
      if (v.is_bool()) return Value(v.as_bool() ? 1.0 : 0.0);
      if (v.is_number() && std::isfinite(v.as_double())) return Value(v.as_double());
      if (v.is_string()) {
        const std::string& s = v.as_string();
        double d = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec == std::errc() && p == s.data() + s.size() && std::isfinite(d)) return Value(d);
      }
      *why = "Float cannot represent non numeric value: " + json;
      return std::nullopt;
    }
    if (t.name == "String" || t.name == "ID") {
      if (v.is_string()) return v;
      if (v.is_int()) return Value(std::to_string(v.as_int()));
      if (t.name == "String" && v.is_bool()) return Value(v.as_bool() ? "true" : "false");
      if (t.name == "String" && v.is_float()) return Value(v.ToJson());
      *why = t.name + " cannot represent value: " + json;
      return std::nullopt;
    }
    if (t.name == "Boolean") {
      if (v.is_bool()) return v;
      if (v.is_number()) return Value(v.as_double() != 0);
      *why = "Boolean cannot represent a non boolean value: " + json;
      return std::nullopt;
    }
    return v;  // custom scalars
  }

  const Schema& schema_;
  Value vars_;
  ResolveContext ctx_;
  std::map<std::string, const FragmentDefinition*> fragments_;
  std::vector<GraphQLError> errors_;
};

GraphQLError RequestError(std::string message, std::vector<Location> locations = {}) {
  GraphQLError e;
  e.message = std::move(message);
  e.locations = std::move(locations);
  return e;
}

}  // namespace

void WriteError(TextBuffer& out, const GraphQLError& error) {
  out.Put("{\"message\":");
  out.PutJsonString(error.message);
  if (!error.locations.empty()) {
    out.Put(",\"locations\":[");
    for (size_t i = 0; i < error.locations.size(); ++i) {
      if (i) out.Put(',');
      out.Put("{\"line\":");
      out.PutInt(error.locations[i].line);
      out.Put(",\"column\":");
      out.PutInt(error.locations[i].column);
      out.Put('}');
    }
    out.Put(']');
  }
  if (!error.path.empty()) {
    out.Put(",\"path\":[");
    for (size_t i = 0; i < error.path.size(); ++i) {
      if (i) out.Put(',');
      if (const auto* key = std::get_if<std::string>(&error.path[i])) {
        out.PutJsonString(*key);
      } else {
        out.PutInt(std::get<int64_t>(error.path[i]));
      }
    }
    out.Put(']');
  }
  out.Put('}');
}

std::string ExecutionResult::ToJson() const {
  TextBuffer out(1024);
  out.Put('{');
  if (!errors.empty()) {
    out.Put("\"errors\":[");
    for (size_t i = 0; i < errors.size(); ++i) {
      if (i) out.Put(',');
      WriteError(out, errors[i]);
    }
    out.Put(']');
  }
  if (data) {
    if (!errors.empty()) out.Put(',');
    out.Put("\"data\":");
    data->WriteJson(out);
  }
  out.Put('}');
  return std::string(out.view());
}

ExecutionResult Execute(const Schema& schema, const Document& document,
                        std::string_view operation_name, const Value& variables, void* user) {
  ExecutionResult r;
  const OperationDefinition* op = nullptr;
  if (operation_name.empty()) {
    if (document.operations.size() != 1) {
      r.errors.push_back(
          RequestError(document.operations.empty()
                           ? "Must provide an operation."
                           : "Must provide operation name if query contains multiple operations."));
      return r;
    }
    op = &document.operations.front();
  } else {
    for (const OperationDefinition& o : document.operations) {
      if (o.name == operation_name) op = &o;
    }
    if (op == nullptr) {
      r.errors.push_back(RequestError("Unknown operation named " + Quote(operation_name) + "."));
      return r;
    }
  }
  if (op->type != OperationType::kQuery) {
    r.errors.push_back(RequestError("Schema is not configured to execute " +
                                        std::string(Name(op->type)) +
                                        " operation: tally's GraphQL API only reads.",
                                    {op->loc}));
    return r;
  }
  if (!variables.is_null() && !variables.is_object()) {
    r.errors.push_back(RequestError("Variables must be provided as an object."));
    return r;
  }
  // CoerceVariableValues (spec 6.1.2).
  Value coerced(Value::Object{});
  for (const VariableDefinition& v : op->variables) {
    const Value* given = variables.Find(v.name);
    if (given == nullptr) {
      if (v.default_value) {
        Value d;
        if (CoerceLiteral(schema, *v.default_value, v.type, Value(Value::Object{}), &d)) {
          coerced.Set(v.name, std::move(d));
        }
      } else if (v.type.IsNonNull()) {
        r.errors.push_back(RequestError("Variable \"$" + v.name + "\" of required type " +
                                            Quote(v.type.ToString()) + " was not provided.",
                                        {v.loc}));
      }
      continue;
    }
    if (given->is_null() && v.type.IsNonNull()) {
      r.errors.push_back(RequestError("Variable \"$" + v.name + "\" of non-null type " +
                                          Quote(v.type.ToString()) + " must not be null.",
                                      {v.loc}));
      continue;
    }
    Value out;
    std::string why;
    if (!CoerceInput(schema, *given, v.type, &out, &why)) {
      r.errors.push_back(RequestError("Variable \"$" + v.name + "\" got invalid value " +
                                          given->ToJson().substr(0, 64) + "; " + why,
                                      {v.loc}));
      continue;
    }
    coerced.Set(v.name, std::move(out));
  }
  if (!r.errors.empty()) return r;
  Executor ex(schema, document, std::move(coerced), user);
  r.data = ex.Run(*op);
  r.errors = std::move(ex.errors());
  return r;
}

ExecutionResult ExecuteRequest(const Schema& schema, std::string_view query,
                               std::string_view operation_name, const Value& variables, void* user,
                               const ExecutionOptions& options) {
  ParseResult parsed = Parse(query, options.parse);
  ExecutionResult r;
  if (!parsed.ok()) {
    r.errors.push_back(std::move(*parsed.error));
    return r;
  }
  r.errors = Validate(schema, parsed.document, options.validation);
  if (!r.errors.empty()) return r;
  return Execute(schema, parsed.document, operation_name, variables, user);
}

}  // namespace tally::graphql
