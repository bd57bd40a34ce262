// libFuzzer harness for the GraphQL front end (src/api/graphql): the lexer and parser on any
// bytes, then validation (every rule and the depth and complexity limits) against tally's schema
// for documents that parse. The schema is the served one without its resolvers
// (api/graphql/tally_schema_types.h): validation never runs a resolver, and leaving them out
// keeps the API tier, the metrics engine, the ledger and the models out of this build.
// Invariants, beyond "does not crash":
//   - a refused document has exactly one error, "Syntax Error: ...", at line >= 1, column >= 1;
//   - a parsed document validates to errors that each have a message, a rule and locations at
//     line >= 1, column >= 1; the complexity of every operation is >= 0;
//   - parsing is deterministic: the same bytes give the same verdict and message.

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "api/graphql/parser.h"
#include "api/graphql/tally_schema_types.h"
#include "api/graphql/validation.h"

namespace {

void Check(bool ok, const char* what, std::string_view data) {
  if (ok) return;
  std::fprintf(stderr, "invariant violated: %s\ninput: %.*s\n", what, static_cast<int>(data.size()),
               data.data());
  std::abort();
}

const tally::graphql::Schema& TallySchema() {
  static std::unique_ptr<tally::graphql::Schema> schema =
      tally::BuildTallySchemaTypes(tally::MetricCatalogue::Builtin());
  return *schema;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace tally::graphql;
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  ParseResult r = Parse(data);
  if (!r.ok()) {
    Check(r.error->message.starts_with("Syntax Error: "), "syntax errors say so", data);
    Check(r.error->locations.size() == 1, "a syntax error has one location", data);
    Check(r.error->locations[0].line >= 1 && r.error->locations[0].column >= 1,
          "locations start at 1:1", data);
    ParseResult again = Parse(data);
    Check(!again.ok() && again.error->message == r.error->message, "parsing is deterministic",
          data);
    return 0;
  }
  for (const GraphQLError& e : Validate(TallySchema(), r.document)) {
    Check(!e.message.empty() && !e.rule.empty(), "errors have a message and a rule", data);
    for (const Location& l : e.locations) {
      Check(l.line >= 1 && l.column >= 1, "locations start at 1:1", data);
    }
  }
  for (const OperationDefinition& op : r.document.operations) {
    Check(Complexity(TallySchema(), r.document, op) >= 0, "complexity is not negative", data);
  }
  return 0;
}
