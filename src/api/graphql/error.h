#pragma once
// A GraphQL error as the spec's response format carries it (section 7.1.2): a message, the
// places in the document it concerns, and for field errors the response path.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "api/graphql/ast.h"

namespace tally::graphql {

//! One step of a response path: a field's response key or a list index.
using PathSegment = std::variant<std::string, int64_t>;

struct GraphQLError {
  std::string message;
  std::vector<Location> locations;
  std::vector<PathSegment> path;  // empty: not a field error
  //! The validation rule that reported it ("FieldsOnCorrectType", "MaxDepth", "Syntax", ...);
  //! not sent to clients, used by tests to compare verdicts with graphql-js by category.
  std::string rule;
};

}  // namespace tally::graphql
