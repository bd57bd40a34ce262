#include "api/graphql/schema.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "api/graphql/parser.h"

namespace tally::graphql {

namespace {

TypeRef MustParseType(std::string_view text) {
  std::optional<TypeRef> t = ParseTypeRef(text);
  if (!t) {
    std::cerr << "graphql schema: bad type '" << text << "'\n";
    std::abort();
  }
  return *t;
}

std::optional<AstValue> MustParseDefault(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::optional<AstValue> v = ParseConstValue(text);
  if (!v) {
    std::cerr << "graphql schema: bad default value '" << text << "'\n";
    std::abort();
  }
  return v;
}

InputValueDef MakeInput(std::string name, std::string_view type, std::string description,
                        std::string_view default_literal) {
  InputValueDef v;
  v.name = std::move(name);
  v.type = MustParseType(type);
  v.description = std::move(description);
  v.default_value = MustParseDefault(default_literal);
  return v;
}

constexpr std::string_view kBuiltinScalars[] = {"Int", "Float", "String", "Boolean", "ID"};

bool IsWhiteSpace(char c) {
  return c == ' ' || c == '\t';
}

// printDescription() of graphql-js's printSchema.
std::string Description(std::string_view text, std::string_view indentation, bool first_in_block) {
  if (text.empty()) return "";
  std::string out = !indentation.empty() && !first_in_block ? "\n" + std::string(indentation)
                                                            : std::string(indentation);
  for (char c : PrintBlockString(text)) {
    out += c;
    if (c == '\n') out += indentation;
  }
  return out + "\n";
}

std::string Deprecated(const std::optional<std::string>& reason) {
  if (!reason) return "";
  if (*reason == "No longer supported") return " @deprecated";
  AstValue v;
  v.kind = AstValue::Kind::kString;
  v.text = *reason;
  return " @deprecated(reason: " + PrintValue(v) + ")";
}

std::string InputValue(const InputValueDef& arg) {
  std::string out = arg.name + ": " + arg.type.ToString();
  if (arg.default_value) out += " = " + PrintValue(*arg.default_value);
  return out + Deprecated(arg.deprecation_reason);
}

std::string Args(const std::vector<InputValueDef>& args, std::string_view indentation) {
  if (args.empty()) return "";
  const bool described = std::any_of(args.begin(), args.end(),
                                     [](const InputValueDef& a) { return !a.description.empty(); });
  std::string out = "(";
  if (!described) {
    for (size_t i = 0; i < args.size(); ++i) out += (i ? ", " : "") + InputValue(args[i]);
    return out + ")";
  }
  out += "\n";
  const std::string inner = "  " + std::string(indentation);
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) out += "\n";
    out += Description(args[i].description, inner, i == 0) + inner + InputValue(args[i]);
  }
  return out + "\n" + std::string(indentation) + ")";
}

std::string Block(const std::vector<std::string>& items) {
  if (items.empty()) return "";
  std::string out = " {\n";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "\n" : "") + items[i];
  return out + "\n}";
}

}  // namespace

std::string_view Name(TypeKind kind) {
  switch (kind) {
    case TypeKind::kScalar:
      return "SCALAR";
    case TypeKind::kObject:
      return "OBJECT";
    case TypeKind::kInterface:
      return "INTERFACE";
    case TypeKind::kUnion:
      return "UNION";
    case TypeKind::kEnum:
      return "ENUM";
    case TypeKind::kInputObject:
      return "INPUT_OBJECT";
  }
  return "SCALAR";
}

std::string PrintBlockString(std::string_view text) {
  std::string escaped;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 3, "\"\"\"") == 0) escaped += '\\';
    escaped += text[i];
  }
  std::vector<std::string_view> lines;
  {
    size_t start = 0;
    std::string_view e = escaped;
    for (size_t i = 0; i <= e.size(); ++i) {
      if (i == e.size() || e[i] == '\n' || e[i] == '\r') {
        lines.push_back(e.substr(start, i - start));
        if (i + 1 < e.size() && e[i] == '\r' && e[i + 1] == '\n') ++i;
        start = i + 1;
      }
    }
  }
  const bool single = lines.size() == 1;
  bool force_leading = lines.size() > 1;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (!lines[i].empty() && !IsWhiteSpace(lines[i][0])) force_leading = false;
  }
  const bool trailing_triple = std::string_view(escaped).ends_with("\\\"\"\"");
  const bool trailing_quote = text.ends_with('"') && !trailing_triple;
  const bool force_trailing = trailing_quote || text.ends_with('\\');
  const bool multiple =
      !single || text.size() > 70 || force_trailing || force_leading || trailing_triple;
  const bool skip_leading = single && !text.empty() && IsWhiteSpace(text[0]);
  std::string out = "\"\"\"";
  if ((multiple && !skip_leading) || force_leading) out += "\n";
  out += escaped;
  if (multiple || force_trailing) out += "\n";
  return out + "\"\"\"";
}

const InputValueDef* FieldDef::FindArg(std::string_view arg) const {
  for (const InputValueDef& a : args) {
    if (a.name == arg) return &a;
  }
  return nullptr;
}

FieldDef& FieldDef::Arg(std::string arg, std::string_view type, std::string arg_description,
                        std::string_view default_literal) {
  args.push_back(MakeInput(std::move(arg), type, std::move(arg_description), default_literal));
  return *this;
}

const FieldDef* TypeDef::FindField(std::string_view field) const {
  for (const FieldDef& f : fields) {
    if (f.name == field) return &f;
  }
  return nullptr;
}

const InputValueDef* TypeDef::FindInputField(std::string_view field) const {
  for (const InputValueDef& f : input_fields) {
    if (f.name == field) return &f;
  }
  return nullptr;
}

const EnumValueDef* TypeDef::FindEnumValue(std::string_view value) const {
  for (const EnumValueDef& v : enum_values) {
    if (v.name == value) return &v;
  }
  return nullptr;
}

FieldDef& TypeDef::Field(std::string field, std::string_view type, std::string field_description,
                         Resolver resolve) {
  FieldDef f;
  f.name = std::move(field);
  f.type = MustParseType(type);
  f.description = std::move(field_description);
  f.resolve = std::move(resolve);
  fields.push_back(std::move(f));
  return fields.back();
}

TypeDef& TypeDef::InputField(std::string field, std::string_view type,
                             std::string field_description, std::string_view default_literal) {
  input_fields.push_back(
      MakeInput(std::move(field), type, std::move(field_description), default_literal));
  return *this;
}

TypeDef& TypeDef::EnumValue(std::string value, std::string value_description) {
  EnumValueDef v;
  v.name = std::move(value);
  v.description = std::move(value_description);
  enum_values.push_back(std::move(v));
  return *this;
}

const InputValueDef* DirectiveDef::FindArg(std::string_view arg) const {
  for (const InputValueDef& a : args) {
    if (a.name == arg) return &a;
  }
  return nullptr;
}

Schema::Schema() {
  AddType(TypeKind::kScalar, "Int",
          "The `Int` scalar type represents non-fractional signed whole numeric values. Int can "
          "represent values between -(2^31) and 2^31 - 1.");
  AddType(TypeKind::kScalar, "Float",
          "The `Float` scalar type represents signed double-precision fractional values as "
          "specified by [IEEE 754](https://en.wikipedia.org/wiki/IEEE_floating_point).");
  AddType(TypeKind::kScalar, "String",
          "The `String` scalar type represents textual data, represented as UTF-8 character "
          "sequences. The String type is most often used by GraphQL to represent free-form "
          "human-readable text.");
  AddType(TypeKind::kScalar, "Boolean", "The `Boolean` scalar type represents `true` or `false`.");
  AddType(TypeKind::kScalar, "ID",
          "The `ID` scalar type represents a unique identifier, often used to refetch an object "
          "or as key for a cache. The ID type appears in a JSON response as a String; however, "
          "it is not intended to be human-readable. When expected as an input type, any string "
          "(such as `\"4\"`) or integer (such as `4`) input value will be accepted as an ID.");
  auto directive = [&](std::string name, std::string description,
                       std::vector<std::string> locations) -> DirectiveDef& {
    DirectiveDef d;
    d.name = std::move(name);
    d.description = std::move(description);
    d.locations = std::move(locations);
    directives_.push_back(std::move(d));
    return directives_.back();
  };
  directive("include",
            "Directs the executor to include this field or fragment only when the `if` argument "
            "is true.",
            {"FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"})
      .args.push_back(MakeInput("if", "Boolean!", "Included when true.", ""));
  directive("skip",
            "Directs the executor to skip this field or fragment when the `if` argument is true.",
            {"FIELD", "FRAGMENT_SPREAD", "INLINE_FRAGMENT"})
      .args.push_back(MakeInput("if", "Boolean!", "Skipped when true.", ""));
  directive("deprecated", "Marks an element of a GraphQL schema as no longer supported.",
            {"FIELD_DEFINITION", "ARGUMENT_DEFINITION", "INPUT_FIELD_DEFINITION", "ENUM_VALUE"})
      .args.push_back(MakeInput(
          "reason", "String",
          "Explains why this element was deprecated, usually also including a suggestion for how "
          "to access supported similar data. Formatted using the Markdown syntax, as specified "
          "by [CommonMark](https://commonmark.org/).",
          "\"No longer supported\""));
  directive("specifiedBy", "Exposes a URL that specifies the behavior of this scalar.", {"SCALAR"})
      .args.push_back(MakeInput("url", "String!",
                                "The URL that specifies the behavior of this "
                                "scalar.",
                                ""));
  directive("oneOf",
            "Indicates exactly one field must be supplied and this field must not be `null`.",
            {"INPUT_OBJECT"});
  AddIntrospectionTypes(*this);
}

TypeDef& Schema::AddType(TypeKind kind, std::string name, std::string description) {
  auto t = std::make_unique<TypeDef>();
  t->kind = kind;
  t->name = std::move(name);
  t->description = std::move(description);
  TypeDef& ref = *t;
  index_[ref.name] = &ref;
  types_.push_back(std::move(t));
  return ref;
}

const TypeDef* Schema::FindType(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

const DirectiveDef* Schema::FindDirective(std::string_view name) const {
  for (const DirectiveDef& d : directives_) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

std::vector<const TypeDef*> Schema::Types() const {
  std::vector<const TypeDef*> out;
  for (const auto& t : types_) out.push_back(t.get());
  return out;
}

const FieldDef* Schema::FieldOf(const TypeDef& parent, std::string_view name) const {
  if (name == "__typename") return parent.IsComposite() ? &typename_meta_ : nullptr;
  if (parent.name == query_type_) {
    if (name == "__schema") return &schema_meta_;
    if (name == "__type") return &type_meta_;
  }
  return parent.FindField(name);
}

bool Schema::IsPossibleType(const TypeDef& abstract, const TypeDef& object) const {
  if (abstract.name == object.name) return true;
  if (abstract.kind == TypeKind::kUnion) {
    return std::find(abstract.members.begin(), abstract.members.end(), object.name) !=
           abstract.members.end();
  }
  if (abstract.kind == TypeKind::kInterface) {
    return std::find(object.interfaces.begin(), object.interfaces.end(), abstract.name) !=
           object.interfaces.end();
  }
  return false;
}

std::vector<const TypeDef*> Schema::PossibleTypes(const TypeDef& type) const {
  std::vector<const TypeDef*> out;
  if (type.kind == TypeKind::kObject) return {&type};
  for (const auto& t : types_) {
    if (t->kind == TypeKind::kObject && IsPossibleType(type, *t)) out.push_back(t.get());
  }
  return out;
}

bool Schema::IsBuiltin(std::string_view type_name) {
  if (type_name.starts_with("__")) return true;
  return std::find(std::begin(kBuiltinScalars), std::end(kBuiltinScalars), type_name) !=
         std::end(kBuiltinScalars);
}

Status Schema::Check() const {
  if (QueryType() == nullptr || QueryType()->kind != TypeKind::kObject) {
    return Status::InvalidArgument("schema: the query type '" + query_type_ + "' is not an object");
  }
  auto check_input = [&](const std::string& where, const InputValueDef& v) -> Status {
    const TypeDef* t = FindType(v.type.NamedType());
    if (t == nullptr || !t->IsInput()) {
      return Status::InvalidArgument("schema: " + where + "." + v.name + ": '" + v.type.ToString() +
                                     "' is not an input type");
    }
    return Status::Ok();
  };
  for (const auto& t : types_) {
    for (const FieldDef& f : t->fields) {
      const TypeDef* ft = FindType(f.type.NamedType());
      if (ft == nullptr || ft->kind == TypeKind::kInputObject) {
        return Status::InvalidArgument("schema: " + t->name + "." + f.name + ": '" +
                                       f.type.ToString() + "' is not an output type");
      }
      for (const InputValueDef& a : f.args) {
        TALLY_RETURN_IF_ERROR(check_input(t->name + "." + f.name, a));
      }
    }
    for (const InputValueDef& v : t->input_fields) TALLY_RETURN_IF_ERROR(check_input(t->name, v));
    for (const std::string& i : t->interfaces) {
      const TypeDef* it = FindType(i);
      if (it == nullptr || it->kind != TypeKind::kInterface) {
        return Status::InvalidArgument("schema: " + t->name + " implements unknown " + i);
      }
    }
    for (const std::string& m : t->members) {
      const TypeDef* mt = FindType(m);
      if (mt == nullptr || mt->kind != TypeKind::kObject) {
        return Status::InvalidArgument("schema: union " + t->name + " has unknown member " + m);
      }
    }
  }
  for (const DirectiveDef& d : directives_) {
    for (const InputValueDef& a : d.args) TALLY_RETURN_IF_ERROR(check_input("@" + d.name, a));
  }
  return Status::Ok();
}

std::string Schema::PrintSdl() const {
  std::vector<std::string> parts;
  if (!description_.empty() || query_type_ != "Query") {
    parts.push_back(Description(description_, "", true) + "schema {\n  query: " + query_type_ +
                    "\n}");
  }
  for (const auto& t : types_) {
    if (IsBuiltin(t->name)) continue;
    std::string out = Description(t->description, "", true);
    switch (t->kind) {
      case TypeKind::kScalar:
        out += "scalar " + t->name;
        if (!t->specified_by_url.empty()) {
          AstValue url;
          url.kind = AstValue::Kind::kString;
          url.text = t->specified_by_url;
          out += " @specifiedBy(url: " + PrintValue(url) + ")";
        }
        break;
      case TypeKind::kObject:
      case TypeKind::kInterface: {
        out += (t->kind == TypeKind::kObject ? "type " : "interface ") + t->name;
        for (size_t i = 0; i < t->interfaces.size(); ++i) {
          out += (i ? " & " : " implements ") + t->interfaces[i];
        }
        std::vector<std::string> items;
        for (size_t i = 0; i < t->fields.size(); ++i) {
          const FieldDef& f = t->fields[i];
          items.push_back(Description(f.description, "  ", i == 0) + "  " + f.name +
                          Args(f.args, "  ") + ": " + f.type.ToString() +
                          Deprecated(f.deprecation_reason));
        }
        out += Block(items);
        break;
      }
      case TypeKind::kUnion:
        out += "union " + t->name;
        for (size_t i = 0; i < t->members.size(); ++i) {
          out += (i ? " | " : " = ") + t->members[i];
        }
        break;
      case TypeKind::kEnum: {
        out += "enum " + t->name;
        std::vector<std::string> items;
        for (size_t i = 0; i < t->enum_values.size(); ++i) {
          const EnumValueDef& v = t->enum_values[i];
          items.push_back(Description(v.description, "  ", i == 0) + "  " + v.name +
                          Deprecated(v.deprecation_reason));
        }
        out += Block(items);
        break;
      }
      case TypeKind::kInputObject: {
        out += "input " + t->name;
        std::vector<std::string> items;
        for (size_t i = 0; i < t->input_fields.size(); ++i) {
          items.push_back(Description(t->input_fields[i].description, "  ", i == 0) + "  " +
                          InputValue(t->input_fields[i]));
        }
        out += Block(items);
        break;
      }
    }
    parts.push_back(std::move(out));
  }
  std::string sdl;
  for (size_t i = 0; i < parts.size(); ++i) sdl += (i ? "\n\n" : "") + parts[i];
  return sdl + "\n";
}

}  // namespace tally::graphql
