#pragma once
// A GraphQL schema as the validator and the executor read it: types (scalars, objects,
// interfaces, unions, enums, input objects), their fields and arguments, directives, and for
// each object field the resolver that computes it. Declared in code (tally_schema_types.cpp
// declares tally's, tally_schema.cpp adds its resolvers), printed as SDL, and described to clients
// by introspection (introspection.cpp).
//
// A schema is built once, then only read: it is safe to share between threads.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/graphql/ast.h"
#include "api/graphql/value.h"
#include "core/status.h"

namespace tally::graphql {

enum class TypeKind { kScalar, kObject, kInterface, kUnion, kEnum, kInputObject };
//! "SCALAR", "OBJECT", ... as introspection's __TypeKind names them.
std::string_view Name(TypeKind kind);

struct ResolveContext;

//! Computes a field from its parent object and coerced arguments (an object Value). A field
//! without a resolver reads the parent's member of the same name.
using Resolver =
    std::function<Result<Value>(const Value& parent, const Value& args, ResolveContext& context)>;

//! An argument, an input-object field or a directive argument.
struct InputValueDef {
  std::string name, description;
  TypeRef type;
  std::optional<AstValue> default_value;  // a constant literal
  std::optional<std::string> deprecation_reason;
};

struct FieldDef {
  std::string name, description;
  std::vector<InputValueDef> args;
  TypeRef type;
  Resolver resolve;
  std::optional<std::string> deprecation_reason;

  const InputValueDef* FindArg(std::string_view arg) const;
  //! Adds an argument: `type` as written in SDL ("Int!"), `default_literal` as a GraphQL
  //! constant ("20", "DAY") or empty for none. Aborts on malformed text (a programmer error).
  FieldDef& Arg(std::string arg, std::string_view type, std::string arg_description = "",
                std::string_view default_literal = "");
};

struct EnumValueDef {
  std::string name, description;
  std::optional<std::string> deprecation_reason;
};

struct TypeDef {
  TypeKind kind = TypeKind::kObject;
  std::string name, description;
  std::vector<FieldDef> fields;             // objects and interfaces
  std::vector<std::string> interfaces;      // objects and interfaces
  std::vector<std::string> members;         // unions
  std::vector<EnumValueDef> enum_values;    // enums
  std::vector<InputValueDef> input_fields;  // input objects
  std::string specified_by_url;             // scalars

  bool IsComposite() const {
    return kind == TypeKind::kObject || kind == TypeKind::kInterface || kind == TypeKind::kUnion;
  }
  bool IsAbstract() const { return kind == TypeKind::kInterface || kind == TypeKind::kUnion; }
  bool IsLeaf() const { return kind == TypeKind::kScalar || kind == TypeKind::kEnum; }
  bool IsInput() const {
    return kind == TypeKind::kScalar || kind == TypeKind::kEnum || kind == TypeKind::kInputObject;
  }
  const FieldDef* FindField(std::string_view field) const;
  const InputValueDef* FindInputField(std::string_view field) const;
  const EnumValueDef* FindEnumValue(std::string_view value) const;

  //! Adds a field; `type` as written in SDL. Aborts on malformed text (a programmer error).
  FieldDef& Field(std::string field, std::string_view type, std::string field_description,
                  Resolver resolve = {});
  //! Adds an input field (input objects).
  TypeDef& InputField(std::string field, std::string_view type, std::string field_description,
                      std::string_view default_literal = "");
  //! Adds an enum value.
  TypeDef& EnumValue(std::string value, std::string value_description = "");
};

struct DirectiveDef {
  std::string name, description;
  std::vector<std::string> locations;  // "FIELD", "QUERY", ... (__DirectiveLocation names)
  std::vector<InputValueDef> args;
  bool repeatable = false;

  const InputValueDef* FindArg(std::string_view arg) const;
};

class Schema {
 public:
  //! A schema with the specified scalars (Int, Float, String, Boolean, ID), the specified
  //! directives (@include, @skip, @deprecated, @specifiedBy, @oneOf) and the introspection
  //! types; the caller adds its own types and sets the query type.
  Schema();
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;

  //! Adds a type and returns it for its fields to be declared. The reference stays valid.
  TypeDef& AddType(TypeKind kind, std::string name, std::string description);
  void SetQueryType(std::string name) { query_type_ = std::move(name); }
  void SetDescription(std::string description) { description_ = std::move(description); }

  //! Checks that every referenced type exists, argument and field types are input or output
  //! types as they must be, and default values are constants. Call once after building.
  Status Check() const;

  const TypeDef* FindType(std::string_view name) const;
  const DirectiveDef* FindDirective(std::string_view name) const;
  //! Every type, in declaration order (built-ins first).
  std::vector<const TypeDef*> Types() const;
  const std::vector<DirectiveDef>& directives() const { return directives_; }
  const TypeDef* QueryType() const { return FindType(query_type_); }
  const std::string& description() const { return description_; }

  //! True when object type `object` is `abstract` itself or one of its possible types.
  bool IsPossibleType(const TypeDef& abstract, const TypeDef& object) const;
  //! The object types an interface or union may be; the type itself for an object type.
  std::vector<const TypeDef*> PossibleTypes(const TypeDef& type) const;

  //! The field `name` of `parent`, including the meta-fields: __typename on every composite
  //! type, __schema and __type on the query type. nullptr when there is none.
  const FieldDef* FieldOf(const TypeDef& parent, std::string_view name) const;

  //! True for the specified scalars and the introspection types (left out of the SDL).
  static bool IsBuiltin(std::string_view type_name);

  //! The schema in SDL, printed as graphql-js's printSchema() prints it.
  std::string PrintSdl() const;

 private:
  std::vector<std::unique_ptr<TypeDef>> types_;
  std::map<std::string, TypeDef*, std::less<>> index_;
  std::vector<DirectiveDef> directives_;
  std::string query_type_;
  std::string description_;
  FieldDef schema_meta_, type_meta_, typename_meta_;
  friend void AddIntrospectionTypes(Schema& schema);
};

//! Adds the introspection types (__Schema, __Type, ...) with their resolvers; Schema() calls it.
void AddIntrospectionTypes(Schema& schema);

//! `text` as a GraphQL block string the way graphql-js prints descriptions.
std::string PrintBlockString(std::string_view text);

}  // namespace tally::graphql
