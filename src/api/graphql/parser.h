#pragma once
// The GraphQL parser (spec section 2): an executable document from source text, or a syntax
// error naming its line and column. Type-system definitions are skipped over and recorded by
// name, so validation can report them as not executable, as graphql-js does.

#include <optional>
#include <string_view>

#include "api/graphql/ast.h"
#include "api/graphql/error.h"

namespace tally::graphql {

struct ParseOptions {
  //! Longer documents are refused before any parsing (the request-size limit of /graphql).
  size_t max_bytes = 64 * 1024;
  //! Deeper nesting of selection sets, lists, objects and types is a syntax error, so hostile
  //! input cannot exhaust the stack.
  int max_nesting = 128;
};

struct ParseResult {
  Document document;
  std::optional<GraphQLError> error;  // "Syntax Error: ..." with one location
  bool ok() const { return !error.has_value(); }
};

//! Parses `source`. Never throws and never crashes on any input.
ParseResult Parse(std::string_view source, const ParseOptions& options = {});

//! Parses a type reference such as "[String!]!" (used to declare schemas in code).
std::optional<TypeRef> ParseTypeRef(std::string_view source);
//! Parses a constant value such as `20`, `DAY` or `["a"]` (default values declared in code).
std::optional<AstValue> ParseConstValue(std::string_view source);

}  // namespace tally::graphql
