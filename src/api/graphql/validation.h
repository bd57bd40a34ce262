#pragma once
// Validation of an executable document against a schema (spec section 5), before anything is
// executed. Implements the spec's rules as graphql-js names them:
//   ExecutableDefinitions, UniqueOperationNames, LoneAnonymousOperation, KnownTypeNames,
//   FragmentsOnCompositeTypes, VariablesAreInputTypes, ScalarLeafs, FieldsOnCorrectType,
//   UniqueFragmentNames, KnownFragmentNames, NoUnusedFragments, PossibleFragmentSpreads,
//   NoFragmentCycles, UniqueVariableNames, NoUndefinedVariables, NoUnusedVariables,
//   KnownDirectives, UniqueDirectivesPerLocation, KnownArgumentNames, UniqueArgumentNames,
//   ValuesOfCorrectType, ProvidedRequiredArguments, VariablesInAllowedPosition,
//   OverlappingFieldsCanBeMerged (same response name: different fields, different arguments,
//   conflicting return types, and the same recursively in sub-selections), UniqueInputFieldNames;
// and tally's limits, checked once the document is otherwise valid:
//   MaxDepth      fields nested deeper than max_depth (introspection fields are not counted);
//   MaxComplexity the cost over budget: each field costs 1, and a field returning a list of
//                 objects multiplies the cost of itself and its selection by its `first` or
//                 `limit` argument (or 100 when it has none).
// Messages follow graphql-js's wording so clients see familiar errors.

#include <vector>

#include "api/graphql/ast.h"
#include "api/graphql/error.h"
#include "api/graphql/parser.h"
#include "api/graphql/schema.h"

namespace tally::graphql {

struct ValidationOptions {
  int max_depth = 12;
  int64_t max_complexity = 5000;
  int64_t default_list_size = 100;  // the multiplier of a list field without first/limit
};

//! Every rule violation in `document`, in document order per rule; empty when it is valid.
std::vector<GraphQLError> Validate(const Schema& schema, const Document& document,
                                   const ValidationOptions& options = {});

//! The complexity of operation `operation` (as the MaxComplexity rule computes it); fragments
//! must be acyclic.
int64_t Complexity(const Schema& schema, const Document& document,
                   const OperationDefinition& operation, const ValidationOptions& options = {});

}  // namespace tally::graphql
