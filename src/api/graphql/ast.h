#pragma once
// The syntax tree of a GraphQL executable document (GraphQL spec, October 2021, section 2):
// operations, fragments, selections, arguments, directives, values and type references, each
// with the line and column where it starts, so validation and execution errors can point at it.
// Type-system definitions (SDL) are recognised but not kept: only their names and places, which
// is all the "executable definitions" rule needs to reject them.

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace tally::graphql {

//! A place in the source: 1-based line and column (columns count code points).
struct Location {
  int line = 0;
  int column = 0;
};

//! A type as written in a variable definition or a schema: `Int`, `[String!]`, `Granularity!`.
struct TypeRef {
  enum class Kind { kNamed, kList, kNonNull };
  Kind kind = Kind::kNamed;
  std::string name;                   // kNamed
  std::shared_ptr<const TypeRef> of;  // kList, kNonNull
  Location loc;

  static TypeRef Named(std::string name) {
    TypeRef t;
    t.name = std::move(name);
    return t;
  }
  static TypeRef Wrap(Kind kind, TypeRef inner) {
    TypeRef t;
    t.kind = kind;
    t.loc = inner.loc;
    t.of = std::make_shared<const TypeRef>(std::move(inner));
    return t;
  }
  //! The named type inside any wrappers.
  const std::string& NamedType() const { return kind == Kind::kNamed ? name : of->NamedType(); }
  bool IsNonNull() const { return kind == Kind::kNonNull; }
  //! "[String!]!"
  std::string ToString() const;
};
bool operator==(const TypeRef& a, const TypeRef& b);

//! A literal or a variable in a document: an argument, a default value, a list item.
struct AstValue {
  enum class Kind { kVariable, kInt, kFloat, kString, kBoolean, kNull, kEnum, kList, kObject };
  Kind kind = Kind::kNull;
  //! kVariable: the name (without $); kInt, kFloat: the digits as written; kString: the decoded
  //! text; kBoolean: "true" or "false"; kEnum: the name.
  std::string text;
  bool block = false;               // a block string ("""...""")
  std::vector<AstValue> items;      // kList items; kObject field values
  std::vector<std::string> names;   // kObject field names, parallel to items
  std::vector<Location> name_locs;  // kObject field name places
  Location loc;
};

//! `value` printed as GraphQL source, as graphql-js's print() does: `[1, 2]`, `{a: "x"}`.
std::string PrintValue(const AstValue& value);

struct Argument {
  std::string name;
  Location loc;
  AstValue value;
};

struct Directive {
  std::string name;
  Location loc;
  std::vector<Argument> args;
};

struct Selection;

struct SelectionSet {
  std::vector<Selection> items;
  Location loc;
};

//! A field, a fragment spread (`...Name`) or an inline fragment (`... on Type { }`).
struct Selection {
  enum class Kind { kField, kFragmentSpread, kInlineFragment };
  Kind kind = Kind::kField;
  Location loc;
  std::string alias;  // kField: empty when there is none
  std::string name;   // kField: the field; kFragmentSpread: the fragment
  std::vector<Argument> args;
  std::vector<Directive> directives;
  std::string type_condition;  // kInlineFragment: empty when there is none
  Location type_condition_loc;
  bool has_selection_set = false;
  SelectionSet selection_set;

  const std::string& ResponseKey() const { return alias.empty() ? name : alias; }
};

struct VariableDefinition {
  std::string name;  // without $
  Location loc;
  TypeRef type;
  std::optional<AstValue> default_value;
  std::vector<Directive> directives;
};

enum class OperationType { kQuery, kMutation, kSubscription };
std::string_view Name(OperationType t);

struct OperationDefinition {
  OperationType type = OperationType::kQuery;
  std::string name;  // empty: anonymous
  Location loc;
  std::vector<VariableDefinition> variables;
  std::vector<Directive> directives;
  SelectionSet selection_set;
};

struct FragmentDefinition {
  std::string name;
  Location loc;
  std::string type_condition;
  Location type_condition_loc;
  std::vector<Directive> directives;
  SelectionSet selection_set;
};

//! A type-system definition or extension found in the document (which cannot be executed).
struct TypeSystemDefinition {
  std::string name;  // empty for `schema` and `extend schema`
  Location loc;
};

struct Document {
  std::vector<OperationDefinition> operations;
  std::vector<FragmentDefinition> fragments;
  std::vector<TypeSystemDefinition> type_system;
};

}  // namespace tally::graphql
