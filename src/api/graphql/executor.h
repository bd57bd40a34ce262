#pragma once
// Executes a validated GraphQL document against a schema (spec section 6): selects the
// operation, coerces variables and arguments, collects fields through fragments and @skip /
// @include, calls resolvers and completes their values, with field errors recorded at their
// path and nulls propagated to the nearest nullable field for non-null fields.
//
// ExecuteRequest() is the whole pipeline: parse, validate (with tally's depth and complexity
// limits), execute. A request error (syntax, validation, variables, operation selection) has no
// data; execution errors come with partial data.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/graphql/ast.h"
#include "api/graphql/error.h"
#include "api/graphql/schema.h"
#include "api/graphql/validation.h"
#include "api/graphql/value.h"

namespace tally::graphql {

//! What a resolver sees besides its parent and arguments.
struct ResolveContext {
  const Schema& schema;
  //! The embedding application's per-request state (tally's caller and row count); resolvers
  //! of that application know its type.
  void* user = nullptr;
};

struct ExecutionResult {
  std::optional<Value> data;  // absent: a request error, nothing was executed
  std::vector<GraphQLError> errors;

  bool request_error() const { return !data.has_value(); }
  //! {"errors": [...], "data": ...}: errors first and only when there are some; data only
  //! when execution started (the spec's response format, section 7.1).
  std::string ToJson() const;
};

struct ExecutionOptions {
  ParseOptions parse;
  ValidationOptions validation;
};

//! Runs `operation_name` (or the only operation) of a parsed and validated `document`.
//! `variables` is a JSON object (or null) of raw variable values.
ExecutionResult Execute(const Schema& schema, const Document& document,
                        std::string_view operation_name, const Value& variables, void* user);

//! Parses, validates and executes `query`.
ExecutionResult ExecuteRequest(const Schema& schema, std::string_view query,
                               std::string_view operation_name, const Value& variables, void* user,
                               const ExecutionOptions& options = {});

//! Writes one error as the response format has it: message, locations, path.
void WriteError(TextBuffer& out, const GraphQLError& error);

}  // namespace tally::graphql
