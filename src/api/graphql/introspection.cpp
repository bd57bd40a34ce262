// Introspection (spec section 4): the __Schema, __Type, __Field, __InputValue, __EnumValue and
// __Directive types, their resolvers, and the __schema / __type / __typename meta-fields.
//
// Types refer to each other in cycles, so a __Type is resolved lazily: its Value is an object
// holding only the type reference it describes ({"$type": "[String!]!"}), and every __Type field
// reads the schema from there. Fields, arguments, enum values and directives have no cycles of
// their own and are built as plain objects.

#include "api/graphql/executor.h"
#include "api/graphql/parser.h"
#include "api/graphql/schema.h"

namespace tally::graphql {

namespace {

constexpr const char* kTypeRef = "$type";

Value TypeValue(const TypeRef& ref) {
  Value v(Value::Object{});
  v.Set(kTypeRef, ref.ToString());
  return v;
}

Value TypeValue(std::string_view name) {
  return TypeValue(TypeRef::Named(std::string(name)));
}

Value Text(const std::string& s) {
  return s.empty() ? Value() : Value(s);
}

Value Deprecation(const std::optional<std::string>& reason) {
  return reason ? Value(*reason) : Value();
}

Value InputValue(const InputValueDef& v) {
  Value o(Value::Object{});
  o.Set("name", v.name);
  o.Set("description", Text(v.description));
  o.Set("type", TypeValue(v.type));
  o.Set("defaultValue", v.default_value ? Value(PrintValue(*v.default_value)) : Value());
  o.Set("isDeprecated", v.deprecation_reason.has_value());
  o.Set("deprecationReason", Deprecation(v.deprecation_reason));
  return o;
}

Value InputValues(const std::vector<InputValueDef>& values) {
  Value::List out;
  for (const InputValueDef& v : values) out.push_back(InputValue(v));
  return out;
}

// The described type reference of a __Type value; nullopt for anything else.
std::optional<TypeRef> RefOf(const Value& parent) {
  const Value* ref = parent.Find(kTypeRef);
  if (ref == nullptr || !ref->is_string()) return std::nullopt;
  return ParseTypeRef(ref->as_string());
}

bool IncludeDeprecated(const Value& args) {
  const Value* v = args.Find("includeDeprecated");
  return v && v->is_bool() && v->as_bool();
}

// A resolver of a __Type field that applies to named types only (null for wrappers).
Resolver OnNamed(std::function<Value(const TypeDef&, const Value& args, const Schema&)> f) {
  return [f = std::move(f)](const Value& parent, const Value& args,
                            ResolveContext& ctx) -> Result<Value> {
    std::optional<TypeRef> ref = RefOf(parent);
    if (!ref || ref->kind != TypeRef::Kind::kNamed) return Value();
    const TypeDef* t = ctx.schema.FindType(ref->name);
    if (t == nullptr) return Value();
    return f(*t, args, ctx.schema);
  };
}

Value DirectiveValue(const DirectiveDef& d) {
  Value o(Value::Object{});
  o.Set("name", d.name);
  o.Set("description", Text(d.description));
  o.Set("isRepeatable", d.repeatable);
  Value::List locations;
  for (const std::string& l : d.locations) locations.emplace_back(l);
  o.Set("locations", std::move(locations));
  o.Set("args", InputValues(d.args));
  return o;
}

Result<Value> FilterDeprecated(const Value& parent, const Value& args, const char* member) {
  const Value* all = parent.Find(member);
  if (all == nullptr || !all->is_list()) return Value(Value::List{});
  if (IncludeDeprecated(args)) return *all;
  Value::List out;
  for (const Value& v : all->as_list()) {
    const Value* d = v.Find("isDeprecated");
    if (!(d && d->is_bool() && d->as_bool())) out.push_back(v);
  }
  return Value(std::move(out));
}

}  // namespace

void AddIntrospectionTypes(Schema& schema) {
  TypeDef& s = schema.AddType(
      TypeKind::kObject, "__Schema",
      "A GraphQL Schema defines the capabilities of a GraphQL server. It exposes all available "
      "types and directives on the server, as well as the entry points for query, mutation, "
      "and subscription operations.");
  s.Field("description", "String", "",
          [](const Value&, const Value&, ResolveContext& ctx) -> Result<Value> {
            return Text(ctx.schema.description());
          });
  s.Field("types", "[__Type!]!", "A list of all types supported by this server.",
          [](const Value&, const Value&, ResolveContext& ctx) -> Result<Value> {
            Value::List out;
            for (const TypeDef* t : ctx.schema.Types()) out.push_back(TypeValue(t->name));
            return Value(std::move(out));
          });
  s.Field("queryType", "__Type!", "The type that query operations will be rooted at.",
          [](const Value&, const Value&, ResolveContext& ctx) -> Result<Value> {
            return TypeValue(ctx.schema.QueryType()->name);
          });
  s.Field("mutationType", "__Type",
          "If this server supports mutation, the type that mutation operations will be rooted "
          "at.");
  s.Field("subscriptionType", "__Type",
          "If this server support subscription, the type that subscription operations will be "
          "rooted at.");
  s.Field("directives", "[__Directive!]!", "A list of all directives supported by this server.",
          [](const Value&, const Value&, ResolveContext& ctx) -> Result<Value> {
            Value::List out;
            for (const DirectiveDef& d : ctx.schema.directives()) out.push_back(DirectiveValue(d));
            return Value(std::move(out));
          });

  TypeDef& t = schema.AddType(
      TypeKind::kObject, "__Type",
      "The fundamental unit of any GraphQL Schema is the type. There are many kinds of types in "
      "GraphQL as represented by the `__TypeKind` enum.");
  t.Field("kind", "__TypeKind!", "",
          [](const Value& parent, const Value&, ResolveContext& ctx) -> Result<Value> {
            std::optional<TypeRef> ref = RefOf(parent);
            if (!ref) return Status::Internal("not a __Type");
            if (ref->kind == TypeRef::Kind::kList) return Value("LIST");
            if (ref->kind == TypeRef::Kind::kNonNull) return Value("NON_NULL");
            const TypeDef* def = ctx.schema.FindType(ref->name);
            if (def == nullptr) return Status::Internal("unknown type " + ref->name);
            return Value(std::string(Name(def->kind)));
          });
  t.Field("name", "String", "",
          OnNamed([](const TypeDef& d, const Value&, const Schema&) { return Value(d.name); }));
  t.Field("description", "String", "", OnNamed([](const TypeDef& d, const Value&, const Schema&) {
            return Text(d.description);
          }));
  t.Field("specifiedByURL", "String", "",
          OnNamed([](const TypeDef& d, const Value&, const Schema&) {
            return Text(d.specified_by_url);
          }));
  t.Field("fields", "[__Field!]", "",
          OnNamed([](const TypeDef& d, const Value& args, const Schema&) -> Value {
            if (d.kind != TypeKind::kObject && d.kind != TypeKind::kInterface) return Value();
            Value::List out;
            for (const FieldDef& f : d.fields) {
              if (f.deprecation_reason && !IncludeDeprecated(args)) continue;
              Value o(Value::Object{});
              o.Set("name", f.name);
              o.Set("description", Text(f.description));
              o.Set("args", InputValues(f.args));
              o.Set("type", TypeValue(f.type));
              o.Set("isDeprecated", f.deprecation_reason.has_value());
              o.Set("deprecationReason", Deprecation(f.deprecation_reason));
              out.push_back(std::move(o));
            }
            return out;
          }))
      .Arg("includeDeprecated", "Boolean", "", "false");
  t.Field("interfaces", "[__Type!]", "",
          OnNamed([](const TypeDef& d, const Value&, const Schema&) -> Value {
            if (d.kind != TypeKind::kObject && d.kind != TypeKind::kInterface) return Value();
            Value::List out;
            for (const std::string& i : d.interfaces) out.push_back(TypeValue(i));
            return out;
          }));
  t.Field("possibleTypes", "[__Type!]", "",
          OnNamed([](const TypeDef& d, const Value&, const Schema& sc) -> Value {
            if (!d.IsAbstract()) return Value();
            Value::List out;
            for (const TypeDef* p : sc.PossibleTypes(d)) out.push_back(TypeValue(p->name));
            return out;
          }));
  t.Field("enumValues", "[__EnumValue!]", "",
          OnNamed([](const TypeDef& d, const Value& args, const Schema&) -> Value {
            if (d.kind != TypeKind::kEnum) return Value();
            Value::List out;
            for (const EnumValueDef& e : d.enum_values) {
              if (e.deprecation_reason && !IncludeDeprecated(args)) continue;
              Value o(Value::Object{});
              o.Set("name", e.name);
              o.Set("description", Text(e.description));
              o.Set("isDeprecated", e.deprecation_reason.has_value());
              o.Set("deprecationReason", Deprecation(e.deprecation_reason));
              out.push_back(std::move(o));
            }
            return out;
          }))
      .Arg("includeDeprecated", "Boolean", "", "false");
  t.Field("inputFields", "[__InputValue!]", "",
          OnNamed([](const TypeDef& d, const Value& args, const Schema&) -> Value {
            if (d.kind != TypeKind::kInputObject) return Value();
            Value::List out;
            for (const InputValueDef& f : d.input_fields) {
              if (f.deprecation_reason && !IncludeDeprecated(args)) continue;
              out.push_back(InputValue(f));
            }
            return out;
          }))
      .Arg("includeDeprecated", "Boolean", "", "false");
  t.Field("ofType", "__Type", "",
          [](const Value& parent, const Value&, ResolveContext&) -> Result<Value> {
            std::optional<TypeRef> ref = RefOf(parent);
            if (!ref || ref->kind == TypeRef::Kind::kNamed) return Value();
            return TypeValue(*ref->of);
          });
  t.Field("isOneOf", "Boolean", "",
          OnNamed([](const TypeDef& d, const Value&, const Schema&) -> Value {
            return d.kind == TypeKind::kInputObject ? Value(false) : Value();
          }));

  TypeDef& kind = schema.AddType(TypeKind::kEnum, "__TypeKind",
                                 "An enum describing what kind of type a given `__Type` is.");
  kind.EnumValue("SCALAR", "Indicates this type is a scalar.")
      .EnumValue("OBJECT",
                 "Indicates this type is an object. `fields` and `interfaces` are valid fields.")
      .EnumValue("INTERFACE",
                 "Indicates this type is an interface. `fields`, `interfaces`, and "
                 "`possibleTypes` are valid fields.")
      .EnumValue("UNION", "Indicates this type is a union. `possibleTypes` is a valid field.")
      .EnumValue("ENUM", "Indicates this type is an enum. `enumValues` is a valid field.")
      .EnumValue("INPUT_OBJECT",
                 "Indicates this type is an input object. `inputFields` is a valid field.")
      .EnumValue("LIST", "Indicates this type is a list. `ofType` is a valid field.")
      .EnumValue("NON_NULL", "Indicates this type is a non-null. `ofType` is a valid field.");

  TypeDef& field = schema.AddType(
      TypeKind::kObject, "__Field",
      "Object and Interface types are described by a list of Fields, each of which has a name, "
      "potentially a list of arguments, and a return type.");
  field.Field("name", "String!", "");
  field.Field("description", "String", "");
  field
      .Field("args", "[__InputValue!]!", "",
             [](const Value& parent, const Value& args, ResolveContext&) {
               return FilterDeprecated(parent, args, "args");
             })
      .Arg("includeDeprecated", "Boolean", "", "false");
  field.Field("type", "__Type!", "");
  field.Field("isDeprecated", "Boolean!", "");
  field.Field("deprecationReason", "String", "");

  TypeDef& input = schema.AddType(
      TypeKind::kObject, "__InputValue",
      "Arguments provided to Fields or Directives and the input fields of an InputObject are "
      "represented as Input Values which describe their type and optionally a default value.");
  input.Field("name", "String!", "");
  input.Field("description", "String", "");
  input.Field("type", "__Type!", "");
  input.Field("defaultValue", "String",
              "A GraphQL-formatted string representing the default value for this input value.");
  input.Field("isDeprecated", "Boolean!", "");
  input.Field("deprecationReason", "String", "");

  TypeDef& ev = schema.AddType(
      TypeKind::kObject, "__EnumValue",
      "One possible value for a given Enum. Enum values are unique values, not a placeholder "
      "for a string or numeric value. However an Enum value is returned in a JSON response as "
      "a string.");
  ev.Field("name", "String!", "");
  ev.Field("description", "String", "");
  ev.Field("isDeprecated", "Boolean!", "");
  ev.Field("deprecationReason", "String", "");

  TypeDef& dir = schema.AddType(
      TypeKind::kObject, "__Directive",
      "A Directive provides a way to describe alternate runtime execution and type validation "
      "behavior in a GraphQL document.");
  dir.Field("name", "String!", "");
  dir.Field("description", "String", "");
  dir.Field("isRepeatable", "Boolean!", "");
  dir.Field("locations", "[__DirectiveLocation!]!", "");
  dir.Field("args", "[__InputValue!]!", "",
            [](const Value& parent, const Value& args, ResolveContext&) {
              return FilterDeprecated(parent, args, "args");
            })
      .Arg("includeDeprecated", "Boolean", "", "false");

  TypeDef& loc =
      schema.AddType(TypeKind::kEnum, "__DirectiveLocation",
                     "A Directive can be adjacent to many parts of the GraphQL language, a "
                     "__DirectiveLocation describes one such possible adjacencies.");
  for (const char* l : {"QUERY", "MUTATION", "SUBSCRIPTION", "FIELD", "FRAGMENT_DEFINITION",
                        "FRAGMENT_SPREAD", "INLINE_FRAGMENT", "VARIABLE_DEFINITION", "SCHEMA",
                        "SCALAR", "OBJECT", "FIELD_DEFINITION", "ARGUMENT_DEFINITION", "INTERFACE",
                        "UNION", "ENUM", "ENUM_VALUE", "INPUT_OBJECT", "INPUT_FIELD_DEFINITION"}) {
    loc.EnumValue(l);
  }

  // The meta-fields (spec 4.2): __typename is answered by the executor itself.
  schema.schema_meta_.name = "__schema";
  schema.schema_meta_.description = "Access the current type schema of this server.";
  schema.schema_meta_.type = *ParseTypeRef("__Schema!");
  schema.schema_meta_.resolve = [](const Value&, const Value&, ResolveContext&) -> Result<Value> {
    return Value(Value::Object{});
  };
  schema.type_meta_.name = "__type";
  schema.type_meta_.description = "Request the type information of a single type.";
  schema.type_meta_.type = *ParseTypeRef("__Type");
  schema.type_meta_.Arg("name", "String!");
  schema.type_meta_.resolve = [](const Value&, const Value& args,
                                 ResolveContext& ctx) -> Result<Value> {
    const Value* name = args.Find("name");
    if (name == nullptr || !name->is_string() || !ctx.schema.FindType(name->as_string())) {
      return Value();
    }
    return TypeValue(name->as_string());
  };
  schema.typename_meta_.name = "__typename";
  schema.typename_meta_.description = "The name of the current Object type at runtime.";
  schema.typename_meta_.type = *ParseTypeRef("String!");
}

}  // namespace tally::graphql
