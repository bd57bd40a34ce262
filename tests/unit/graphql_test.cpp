// tally's GraphQL implementation (src/api/graphql): the lexer and parser, validation with the
// spec's rules and tally's depth and complexity limits, execution (arguments, variables,
// aliases, fragments, directives, __typename, errors with paths, null propagation),
// introspection, and tally's schema. graphql-js 16.9 (tests/js/node_modules) is the reference:
// it builds tally's SDL, rebuilds the schema from tally's answer to the standard introspection
// query, and gives its verdict on a corpus of valid and invalid queries (tests/graphql/), which
// tally must share rule by rule.

#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "api/graphql/executor.h"
#include "api/graphql/lexer.h"
#include "api/graphql/parser.h"
#include "api/graphql/tally_schema.h"
#include "api/graphql/tally_schema_types.h"
#include "api/graphql/validation.h"
#include "world_fixture.h"

namespace tally::graphql {
namespace {

namespace fs = std::filesystem;

// ---- Helpers ----------------------------------------------------------------------------------

// Runs a shell command; its stdout and exit status.
testing::TallyRun Shell(const std::string& cmd) {
  testing::TallyRun run{};
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) run.out.append(buf, n);
  const int status = pclose(p);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string Node(const std::string& args) {
  return "node " TALLY_SOURCE_DIR "/tests/js/graphql_reference.mjs " + args;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// tally's schema, for SDL, introspection and validation (no resolver that reads data runs).
const Schema& TallySchema() {
  static MetricsEngine* engine = new MetricsEngine(MetricCatalogue::Builtin(), nullptr);
  static std::unique_ptr<Schema> schema = BuildTallySchema({engine, nullptr, nullptr});
  return *schema;
}

// A small schema with resolvers that need no store, for execution tests:
//   type Query { book(id: Int!): Book  books(first: Int = 2): [Book!]!  strict: Book!
//                echo(s: String, n: Int, list: [Int!], f: Filter, g: Granularity): String
//                broken: String  shelf: Shelf }
//   type Book { id: Int! title: String! broken: String! note: String tags: [String!] }
//   type Shelf { books: [Book] strictBooks: [Book!] }
const Schema& BookSchema() {
  static std::unique_ptr<Schema> schema = [] {
    auto s = std::make_unique<Schema>();
    auto book_value = [](int64_t id) {
      Value b(Value::Object{});
      b.Set("id", id);
      b.Set("title", "Book " + std::to_string(id));
      b.Set("tags", Value(Value::List{Value("a"), Value("b")}));
      return b;
    };
    s->AddType(TypeKind::kEnum, "Granularity", "").EnumValue("DAY").EnumValue("WEEK");
    s->AddType(TypeKind::kInputObject, "Filter", "")
        .InputField("member", "String!", "")
        .InputField("limit", "Int", "", "7");
    TypeDef& book = s->AddType(TypeKind::kObject, "Book", "A book.");
    book.Field("id", "Int!", "");
    book.Field("title", "String!", "");
    book.Field("broken", "String!", "", [](const Value&, const Value&, ResolveContext&) {
      return Result<Value>(Status::Internal("the binding came apart"));
    });
    book.Field("note", "String", "", [](const Value&, const Value&, ResolveContext&) {
      return Result<Value>(Status::InvalidArgument("no note"));
    });
    book.Field("tags", "[String!]", "");
    TypeDef& shelf = s->AddType(TypeKind::kObject, "Shelf", "");
    shelf.Field("books", "[Book]", "");
    shelf.Field("strictBooks", "[Book!]", "");
    TypeDef& q = s->AddType(TypeKind::kObject, "Query", "");
    q.Field("book", "Book", "",
            [book_value](const Value&, const Value& args, ResolveContext&) -> Result<Value> {
              const int64_t id = args.Find("id")->as_int();
              if (id <= 0) return Status::NotFound("book " + std::to_string(id) + " not found");
              return book_value(id);
            })
        .Arg("id", "Int!");
    q.Field("books", "[Book!]!", "",
            [book_value](const Value&, const Value& args, ResolveContext&) -> Result<Value> {
              Value::List out;
              for (int64_t i = 1; i <= args.Find("first")->as_int(); ++i) {
                out.push_back(book_value(i));
              }
              return Value(std::move(out));
            })
        .Arg("first", "Int", "", "2");
    q.Field("strict", "Book!", "", [](const Value&, const Value&, ResolveContext&) {
      Value b(Value::Object{});
      b.Set("id", 1);  // no title: title is String!, so the book cannot be completed
      return Result<Value>(b);
    });
    q.Field("echo", "String", "",
            [](const Value&, const Value& args, ResolveContext&) -> Result<Value> {
              return Value(args.ToJson());
            })
        .Arg("s", "String")
        .Arg("n", "Int")
        .Arg("list", "[Int!]")
        .Arg("f", "Filter")
        .Arg("g", "Granularity", "", "DAY");
    q.Field("shelf", "Shelf", "", [book_value](const Value&, const Value&, ResolveContext&) {
      Value shelf(Value::Object{});
      Value bad(Value::Object{});
      bad.Set("id", 3);  // no title
      shelf.Set("books", Value(Value::List{book_value(1), bad}));
      shelf.Set("strictBooks", Value(Value::List{book_value(1), bad}));
      return Result<Value>(shelf);
    });
    s->SetQueryType("Query");
    EXPECT_TRUE(s->Check().ok()) << s->Check().ToString();
    return s;
  }();
  return *schema;
}

ExecutionResult Exec(const std::string& query, const std::string& variables = "null",
                     const std::string& operation = "", const Schema& schema = BookSchema()) {
  auto vars = Value::FromJson(variables);
  EXPECT_TRUE(vars.ok());
  return ExecuteRequest(schema, query, operation, *vars, nullptr);
}

std::vector<GraphQLError> ValidateText(const std::string& query,
                                       const ValidationOptions& options = {}) {
  ParseResult p = Parse(query);
  if (!p.ok()) return {*p.error};
  return Validate(TallySchema(), p.document, options);
}

std::set<std::string> Rules(const std::vector<GraphQLError>& errors) {
  std::set<std::string> out;
  for (const GraphQLError& e : errors) out.insert(e.rule);
  return out;
}

// ---- Lexer and parser -------------------------------------------------------------------------

TEST(GraphQLParser, ParsesTheWholeQueryLanguage) {
  const std::string text = R"(
    query Usage($id: ID!, $g: Granularity = WEEK, $list: [Int!] = [1, 2], $obj: In = {a: "x", b: [1.5e3, -2]})
        @skip(if: false) {
      who: subscriber(id: $id) {
        ...Profile @include(if: true)
        ... on Subscriber { usage(from: "2024-07-01", to: """ block """, granularity: $g) { time } }
        ... @skip(if: false) { city }
      }
      __typename
    }
    fragment Profile on Subscriber { name flag(b: true, n: null, e: DAY, f: 0.5) }
    { metrics { measures { name } } }
  )";
  ParseResult r = Parse(text);
  ASSERT_TRUE(r.ok()) << r.error->message;
  const Document& d = r.document;
  ASSERT_EQ(d.operations.size(), 2u);
  ASSERT_EQ(d.fragments.size(), 1u);
  const OperationDefinition& op = d.operations[0];
  EXPECT_EQ(op.name, "Usage");
  ASSERT_EQ(op.variables.size(), 4u);
  EXPECT_EQ(op.variables[0].type.ToString(), "ID!");
  EXPECT_EQ(op.variables[1].default_value->kind, AstValue::Kind::kEnum);
  EXPECT_EQ(PrintValue(*op.variables[2].default_value), "[1, 2]");
  EXPECT_EQ(PrintValue(*op.variables[3].default_value), "{a: \"x\", b: [1.5e3, -2]}");
  EXPECT_EQ(op.directives.size(), 1u);
  const Selection& who = op.selection_set.items[0];
  EXPECT_EQ(who.alias, "who");
  EXPECT_EQ(who.name, "subscriber");
  EXPECT_EQ(who.ResponseKey(), "who");
  ASSERT_EQ(who.selection_set.items.size(), 3u);
  EXPECT_EQ(who.selection_set.items[0].kind, Selection::Kind::kFragmentSpread);
  EXPECT_EQ(who.selection_set.items[1].kind, Selection::Kind::kInlineFragment);
  EXPECT_EQ(who.selection_set.items[1].type_condition, "Subscriber");
  EXPECT_EQ(who.selection_set.items[2].type_condition, "");
  const Selection& usage = who.selection_set.items[1].selection_set.items[0];
  EXPECT_EQ(usage.args[1].value.text, " block ");  // one line: nothing to strip
  EXPECT_TRUE(usage.args[1].value.block);
  const Selection& flag = d.fragments[0].selection_set.items[1];
  EXPECT_EQ(flag.args[0].value.kind, AstValue::Kind::kBoolean);
  EXPECT_EQ(flag.args[1].value.kind, AstValue::Kind::kNull);
  EXPECT_EQ(flag.args[2].value.kind, AstValue::Kind::kEnum);
  EXPECT_EQ(flag.args[3].value.kind, AstValue::Kind::kFloat);
  EXPECT_TRUE(d.operations[1].name.empty());
  EXPECT_EQ(op.loc.line, 2);
  EXPECT_EQ(op.loc.column, 5);
}

TEST(GraphQLParser, StringsAndBlockStringsDecodeAsTheSpecSays) {
  ParseResult r = Parse(R"({ a(s: "tab\there \"q\" \\ \u00e9 \u{1F600} \uD83D\uDE00") })");
  ASSERT_TRUE(r.ok()) << r.error->message;
  EXPECT_EQ(r.document.operations[0].selection_set.items[0].args[0].value.text,
            "tab\there \"q\" \\ \xC3\xA9 \xF0\x9F\x98\x80 \xF0\x9F\x98\x80");
  EXPECT_EQ(BlockStringValue("\n    Hello,\n      World!\n\n    Yours,\n      GraphQL.\n  "),
            "Hello,\n  World!\n\nYours,\n  GraphQL.");
  ParseResult b = Parse("{ a(s: \"\"\"  x \\\"\"\" y\n  z\"\"\") }");
  ASSERT_TRUE(b.ok()) << b.error->message;
  EXPECT_EQ(b.document.operations[0].selection_set.items[0].args[0].value.text, "  x \"\"\" y\nz");
}

TEST(GraphQLParser, SyntaxErrorsNameLineAndColumn) {
  struct Case {
    std::string text, message;
    int line, column;
  };
  for (const Case& c : std::vector<Case>{
           {"{ a(x: 01) }", "Syntax Error: Invalid number, unexpected digit after 0: \"1\".", 1, 9},
           {"{\n  a {\n    b\n  }\n", "Syntax Error: Expected Name, found <EOF>.", 5, 1},
           {"{ a(s: \"abc) }", "Syntax Error: Unterminated string.", 1, 15},
           {"query {\n  a %\n}", "Syntax Error: Unexpected character: \"%\".", 2, 5},
           {"", "Syntax Error: Unexpected <EOF>.", 1, 1},
           {"{ a }}", "Syntax Error: Unexpected \"}\".", 1, 6},
           {"fragment on on T { a }", "Syntax Error: Unexpected Name \"on\".", 1, 10},
           {"query ($a: Int = $b) { a }",
            "Syntax Error: Unexpected variable \"$b\" in constant value.", 1, 18},
           {"{ a(s: \"\\q\") }", "Syntax Error: Invalid character escape sequence: \"\\q\".", 1, 9},
           {"{ a(n: 1.) }", "Syntax Error: Invalid number, expected digit but got: \")\".", 1, 10},
           {"{ é(n: 1) }", "Syntax Error: Unexpected character: \"é\".", 1, 3},
       }) {
    ParseResult r = Parse(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.error->message, c.message) << c.text;
    ASSERT_EQ(r.error->locations.size(), 1u);
    EXPECT_EQ(r.error->locations[0].line, c.line) << c.text;
    EXPECT_EQ(r.error->locations[0].column, c.column) << c.text;
  }
}

TEST(GraphQLParser, OversizedDeepAndInvalidUtf8DocumentsAreRefusedWithoutCrashing) {
  ParseOptions small;
  small.max_bytes = 100;
  ParseResult big = Parse("{ a }" + std::string(200, ' '), small);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error->message.find("the limit is 100 bytes"), std::string::npos);
  std::string nested;
  for (int i = 0; i < 5000; ++i) nested += "a {";
  ParseResult deep = Parse("{" + nested + "b" + std::string(5001, '}'));
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.error->message.find("nests deeper than"), std::string::npos);
  ParseResult lists = Parse("{ a(x: " + std::string(5000, '[') + ") }");
  ASSERT_FALSE(lists.ok());
  ParseResult bad = Parse("{ a(s: \"\xff\") }");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error->message.find("invalid UTF-8"), std::string::npos);
  // Every prefix of a valid document is either valid or a clean syntax error.
  const std::string doc =
      "query Q($a: [Int!]! = [1]) { x: f(a: $a, o: {k: \"\"\"v\"\"\"}) @skip(if: true) { ...F ... "
      "on T { g } } } fragment F on T { h }";
  for (size_t n = 0; n <= doc.size(); ++n) {
    ParseResult p = Parse(doc.substr(0, n));
    if (!p.ok()) {
      EXPECT_TRUE(p.error->message.starts_with("Syntax Error: ")) << n;
    }
  }
}

// ---- Validation -----------------------------------------------------------------------------

TEST(GraphQLValidation, ReportsEachRuleWithGraphqlJsWording) {
  struct Case {
    std::string query, rule, message;
  };
  for (const Case& c : std::vector<Case>{
           {"{ subscriber(id: 1) { nickname } }", "FieldsOnCorrectType",
            "Cannot query field \"nickname\" on type \"Subscriber\"."},
           {"{ subscriber(id: 1) }", "ScalarLeafs",
            "Field \"subscriber\" of type \"Subscriber\" must have a selection of subfields. Did "
            "you mean \"subscriber { ... }\"?"},
           {"{ subscriber { name } }", "ProvidedRequiredArguments",
            "Field \"subscriber\" argument \"id\" of type \"ID!\" is required, but it was not "
            "provided."},
           {"query Q($id: ID) { subscriber(id: $id) { name } }", "VariablesInAllowedPosition",
            "Variable \"$id\" of type \"ID\" used in position expecting type \"ID!\"."},
           {"query Q { subscriber(id: $id) { name } }", "NoUndefinedVariables",
            "Variable \"$id\" is not defined by operation \"Q\"."},
           {"{ subscriber(id: 1) { ...A } } fragment A on Subscriber { ...B } fragment B on "
            "Subscriber { ...A }",
            "NoFragmentCycles", "Cannot spread fragment \"A\" within itself via \"B\"."},
           {"{ subscriber(id: 1) { x: name x: city } }", "OverlappingFieldsCanBeMerged",
            "Fields \"x\" conflict because \"name\" and \"city\" are different fields. Use "
            "different aliases on the fields to fetch both if this was intentional."},
           {"{ a: subscriber(id: 1) { x: name } a: subscriber(id: 1) { x: city } }",
            "OverlappingFieldsCanBeMerged",
            "Fields \"a\" conflict because subfields \"x\" conflict because \"name\" and \"city\" "
            "are different fields. Use different aliases on the fields to fetch both if this was "
            "intentional."},
           {"{ subscriber(id: 1) { name } subscriber(id: 2) { name } }",
            "OverlappingFieldsCanBeMerged",
            "Fields \"subscriber\" conflict because they have differing arguments. Use different "
            "aliases on the fields to fetch both if this was intentional."},
           {"{ subscriber(id: 1) { usage(from: \"a\", to: \"b\", granularity: FORTNIGHT) { time } "
            "} }",
            "ValuesOfCorrectType", "Value \"FORTNIGHT\" does not exist in \"Granularity\" enum."},
           {"query @skip(if: true) { __typename }", "KnownDirectives",
            "Directive \"@skip\" may not be used on QUERY."},
           {"type Foo { a: Int }", "ExecutableDefinitions",
            "The \"Foo\" definition is not executable."},
       }) {
    std::vector<GraphQLError> errors = ValidateText(c.query);
    ASSERT_EQ(errors.size(), 1u) << c.query << "\n" << (errors.empty() ? "" : errors[1].message);
    EXPECT_EQ(errors[0].rule, c.rule) << c.query;
    EXPECT_EQ(errors[0].message, c.message) << c.query;
    EXPECT_FALSE(errors[0].locations.empty());
  }
}

TEST(GraphQLValidation, DepthAndComplexityLimitsAreValidationErrorsNamingTheLimit) {
  ValidationOptions shallow;
  shallow.max_depth = 2;
  auto deep = ValidateText("{ subscriber(id: 1) { account { bundles { sms_left } } } }", shallow);
  ASSERT_EQ(deep.size(), 1u);
  EXPECT_EQ(deep[0].rule, "MaxDepth");
  EXPECT_NE(deep[0].message.find("nested 4 fields deep; the maximum query depth is 2"),
            std::string::npos)
      << deep[0].message;
  // Fragments count where they are spread; introspection does not count.
  auto via_fragment = ValidateText(
      "{ subscriber(id: 1) { ...A } } fragment A on Subscriber { account { bundles { sms_left } } "
      "}",
      shallow);
  ASSERT_EQ(via_fragment.size(), 1u);
  EXPECT_EQ(via_fragment[0].rule, "MaxDepth");
  EXPECT_TRUE(
      ValidateText("{ __schema { types { fields { type { ofType { ofType { name } } } } } } }",
                   shallow)
          .empty());

  // 100 subscribers, each with a usage series (a list without first/limit: 100 points).
  const std::string costly =
      "{ subscribers(q: \"a\", limit: 100) { name usage(from: \"a\", to: \"b\") { time } } }";
  ParseResult p = Parse(costly);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Complexity(TallySchema(), p.document, p.document.operations[0]),
            100 * (1 + 1 + 100 * (1 + 1)));
  auto over = ValidateText(costly);
  ASSERT_EQ(over.size(), 1u);
  EXPECT_EQ(over[0].rule, "MaxComplexity");
  EXPECT_NE(over[0].message.find("complexity is 20200; the complexity budget is 5000"),
            std::string::npos)
      << over[0].message;
  // The schema default of `limit` (20) is the multiplier when the argument is left out.
  ParseResult d = Parse("{ subscribers(q: \"a\") { name city } }");
  EXPECT_EQ(Complexity(TallySchema(), d.document, d.document.operations[0]), 20 * 3);
  EXPECT_TRUE(ValidateText("{ subscribers(q: \"a\", limit: 10) { name usage(from: \"a\", to: "
                           "\"b\") { time } } }")
                  .empty());
}

TEST(GraphQLValidation, TheStandardIntrospectionQueryPassesTheLimits) {
  for (const char* mode : {"", "full"}) {
    testing::TallyRun q = Shell(Node(std::string("introspection-query ") + mode));
    ASSERT_EQ(q.code, 0) << q.out;
    EXPECT_TRUE(ValidateText(q.out).empty());
  }
}

// ---- Execution --------------------------------------------------------------------------------

TEST(GraphQLExecution, ResolvesArgumentsAliasesFragmentsAndTypename) {
  ExecutionResult r = Exec(R"(
    query Q($id: Int!, $skip: Boolean = false) {
      first: book(id: 1) { id title }
      second: book(id: $id) { ...B __typename }
      books(first: 3) { id }
      defaulted: books { id @skip(if: $skip) title @include(if: $skip) }
      __typename
    }
    fragment B on Book { title ... on Book { tags } })",
                           R"({"id": 2})");
  EXPECT_TRUE(r.errors.empty()) << r.ToJson();
  EXPECT_EQ(
      r.ToJson(),
      R"({"data":{"first":{"id":1,"title":"Book 1"},"second":{"title":"Book 2","tags":["a","b"],"__typename":"Book"},"books":[{"id":1},{"id":2},{"id":3}],"defaulted":[{"id":1},{"id":2}],"__typename":"Query"}})");
}

TEST(GraphQLExecution, CoercesVariablesAndArgumentsPerTheSpec) {
  ExecutionResult r = Exec(R"(query ($n: Int, $list: [Int!], $f: Filter, $g: Granularity) {
                 a: echo(s: "x", n: $n, list: $list, f: $f, g: $g)
                 b: echo(list: 5, f: {member: "m"})
                 c: echo(n: $missing_is_fine_here) })",
                           R"({"n": 3, "list": 4, "f": {"member": "region"}, "g": "WEEK"})");
  // $missing_is_fine_here is undefined: validation refuses it.
  ASSERT_TRUE(r.request_error());
  EXPECT_EQ(r.errors[0].rule, "NoUndefinedVariables");

  r = Exec(R"(query ($n: Int, $list: [Int!], $f: Filter, $g: Granularity) {
                 a: echo(s: "x", n: $n, list: $list, f: $f, g: $g)
                 b: echo(list: 5, f: {member: "m"}) })",
           R"({"n": 3, "list": 4, "f": {"member": "region"}, "g": "WEEK"})");
  ASSERT_FALSE(r.request_error()) << r.ToJson();
  EXPECT_EQ(
      r.ToJson(),
      R"({"data":{"a":"{\"s\":\"x\",\"n\":3,\"list\":[4],\"f\":{\"member\":\"region\",\"limit\":7},\"g\":\"WEEK\"}","b":"{\"list\":[5],\"f\":{\"member\":\"m\",\"limit\":7},\"g\":\"DAY\"}"}})");

  // Variables that cannot be coerced make the request fail before anything runs.
  for (const auto& [vars, message] : std::vector<std::pair<std::string, std::string>>{
           {R"({"n": 1.5})", "Variable \"$n\" got invalid value 1.5; "},
           {R"({"n": 3000000000})", "Variable \"$n\" got invalid value 3000000000; "},
           {R"({"g": "MONTH"})", "Variable \"$g\" got invalid value \"MONTH\"; "},
           {R"({"f": {"limit": 1}})", "Variable \"$f\" got invalid value {\"limit\":1}; "},
           {R"({"f": {"member": "a", "x": 1}})", "is not defined by type \"Filter\""},
           {R"({"list": [1, null]})", "Variable \"$list\" got invalid value [1,null]; "},
       }) {
    ExecutionResult bad = Exec(
        "query ($n: Int, $list: [Int!], $f: Filter, $g: Granularity) { echo(n: $n, list: "
        "$list, f: $f, g: $g) }",
        vars);
    ASSERT_TRUE(bad.request_error()) << vars;
    EXPECT_NE(bad.errors[0].message.find(message), std::string::npos) << bad.errors[0].message;
  }
  ExecutionResult missing = Exec("query ($id: Int!) { book(id: $id) { id } }", "{}");
  ASSERT_TRUE(missing.request_error());
  EXPECT_EQ(missing.errors[0].message,
            "Variable \"$id\" of required type \"Int!\" was not provided.");
  ExecutionResult null_given =
      Exec("query ($id: Int!) { book(id: $id) { id } }", R"({"id": null})");
  ASSERT_TRUE(null_given.request_error());
  EXPECT_EQ(null_given.errors[0].message,
            "Variable \"$id\" of non-null type \"Int!\" must not be null.");
}

TEST(GraphQLExecution, FieldErrorsCarryPathsAndNullsPropagateToTheNearestNullableField) {
  // A nullable field that fails is null, with an error at its path; siblings still answer.
  ExecutionResult r = Exec("{ book(id: 1) { id note } missing: book(id: -1) { id } }");
  ASSERT_FALSE(r.request_error());
  simdjson::dom::parser parser;
  const std::string json = r.ToJson();
  simdjson::dom::element doc = parser.parse(json);
  EXPECT_EQ(int64_t(doc["data"]["book"]["id"]), 1);
  EXPECT_TRUE(doc["data"]["book"]["note"].is_null());
  EXPECT_TRUE(doc["data"]["missing"].is_null());
  simdjson::dom::array errors = doc["errors"];
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(std::string_view(errors.at(0)["message"]), "no note");
  EXPECT_EQ(std::string_view(errors.at(0)["path"].at(0)), "book");
  EXPECT_EQ(std::string_view(errors.at(0)["path"].at(1)), "note");
  EXPECT_EQ(int64_t(errors.at(0)["locations"].at(0)["line"]), 1);
  EXPECT_EQ(std::string_view(errors.at(1)["message"]), "book -1 not found");

  // A non-null field that fails makes its parent null: book.broken is String!, book is nullable.
  r = Exec("{ book(id: 2) { id broken } books { id } }");
  EXPECT_EQ(
      r.ToJson(),
      R"({"errors":[{"message":"the binding came apart","locations":[{"line":1,"column":20}],"path":["book","broken"]}],"data":{"book":null,"books":[{"id":1},{"id":2}]}})");
  // Up a chain of non-null fields to data itself: strict is Book!, its title is missing.
  r = Exec("{ strict { id title } books { id } }");
  EXPECT_EQ(
      r.ToJson(),
      R"({"errors":[{"message":"Cannot return null for non-nullable field Book.title.","locations":[{"line":1,"column":15}],"path":["strict","title"]}],"data":null})");
  // In lists: a nullable item becomes null; a non-null item nulls the whole list.
  r = Exec("{ shelf { books { title } } }");
  EXPECT_EQ(
      r.ToJson(),
      R"({"errors":[{"message":"Cannot return null for non-nullable field Book.title.","locations":[{"line":1,"column":19}],"path":["shelf","books",1,"title"]}],"data":{"shelf":{"books":[{"title":"Book 1"},null]}}})");
  r = Exec("{ shelf { strictBooks { title } } }");
  EXPECT_EQ(
      r.ToJson(),
      R"({"errors":[{"message":"Cannot return null for non-nullable field Book.title.","locations":[{"line":1,"column":25}],"path":["shelf","strictBooks",1,"title"]}],"data":{"shelf":{"strictBooks":null}}})");
}

TEST(GraphQLExecution, OperationSelectionAndRequestErrorsHaveNoData) {
  const std::string two = "query A { books { id } } query B { __typename }";
  EXPECT_EQ(Exec(two, "null", "B").ToJson(), R"({"data":{"__typename":"Query"}})");
  ExecutionResult none = Exec(two);
  EXPECT_TRUE(none.request_error());
  EXPECT_EQ(
      none.ToJson(),
      R"({"errors":[{"message":"Must provide operation name if query contains multiple operations."}]})");
  EXPECT_EQ(Exec(two, "null", "C").errors[0].message, "Unknown operation named \"C\".");
  ExecutionResult mutation = Exec("mutation { anything }");
  ASSERT_TRUE(mutation.request_error());
  EXPECT_NE(mutation.errors[0].message.find("Schema is not configured to execute mutation"),
            std::string::npos);
  ExecutionResult syntax = Exec("{ books { id }");
  ASSERT_TRUE(syntax.request_error());
  EXPECT_EQ(
      syntax.ToJson(),
      R"({"errors":[{"message":"Syntax Error: Expected Name, found <EOF>.","locations":[{"line":1,"column":15}]}]})");
}

TEST(GraphQLExecution, IntrospectionDescribesTypesFieldsArgumentsAndDefaults) {
  ExecutionResult r = Exec(R"({
    __type(name: "Query") { kind name fields { name args { name defaultValue type { kind name ofType { kind name } } } } }
    filter: __type(name: "Filter") { kind inputFields { name defaultValue } }
    nope: __type(name: "Nope") { name }
    __schema { queryType { name } mutationType { name } directives { name } }
  })");
  ASSERT_TRUE(r.errors.empty()) << r.ToJson();
  const std::string json = r.ToJson();
  EXPECT_NE(
      json.find(
          R"({"name":"first","defaultValue":"2","type":{"kind":"SCALAR","name":"Int","ofType":null}})"),
      std::string::npos)
      << json;
  EXPECT_NE(
      json.find(
          R"({"name":"id","defaultValue":null,"type":{"kind":"NON_NULL","name":null,"ofType":{"kind":"SCALAR","name":"Int"}}})"),
      std::string::npos)
      << json;
  EXPECT_NE(
      json.find(
          R"("filter":{"kind":"INPUT_OBJECT","inputFields":[{"name":"member","defaultValue":null},{"name":"limit","defaultValue":"7"}]})"),
      std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("nope":null)"), std::string::npos);
  EXPECT_NE(json.find(R"("mutationType":null)"), std::string::npos);
  EXPECT_NE(
      json.find(
          R"({"name":"include"},{"name":"skip"},{"name":"deprecated"},{"name":"specifiedBy"},{"name":"oneOf"})"),
      std::string::npos)
      << json;
}

// ---- Against graphql-js -----------------------------------------------------------------------

TEST(GraphQLAgainstGraphqlJs, TheSdlBuildsAndEqualsTheSchemaRebuiltFromIntrospection) {
  const Schema& schema = TallySchema();
  ASSERT_TRUE(schema.Check().ok()) << schema.Check().ToString();
  const std::string dir = testing::TempDir("graphql_schema");
  fs::create_directories(dir);
  const std::string sdl = dir + "/schema.graphql";
  WriteFile(sdl, schema.PrintSdl());
  for (const char* mode : {"", "full"}) {
    SCOPED_TRACE(mode);
    testing::TallyRun q = Shell(Node(std::string("introspection-query ") + mode));
    ASSERT_EQ(q.code, 0) << q.out;
    ExecutionResult r = ExecuteRequest(schema, q.out, "", Value(), nullptr);
    ASSERT_TRUE(r.errors.empty()) << r.ToJson().substr(0, 2000);
    const std::string result = dir + "/introspection.json";
    WriteFile(result, r.ToJson());
    testing::TallyRun cmp = Shell(Node("compare-schema " + sdl + " " + result + " 2>&1"));
    EXPECT_EQ(cmp.code, 0) << cmp.out;
    EXPECT_NE(cmp.out.find("schemas equal"), std::string::npos) << cmp.out;
  }
  fs::remove_all(dir);
}

TEST(GraphQLAgainstGraphqlJs, TheCorpusGetsTheSameVerdictAndRulesFromBoth) {
  const std::string corpus = TALLY_SOURCE_DIR "/tests/graphql/corpus.json";
  const std::string dir = testing::TempDir("graphql_corpus");
  fs::create_directories(dir);
  const std::string sdl = dir + "/schema.graphql";
  WriteFile(sdl, TallySchema().PrintSdl());
  testing::TallyRun js = Shell(Node("validate " + sdl + " " + corpus));
  ASSERT_EQ(js.code, 0) << js.out;
  simdjson::dom::parser parser;
  simdjson::dom::array verdicts = parser.parse(js.out);
  simdjson::dom::parser corpus_parser;
  simdjson::padded_string corpus_text = simdjson::padded_string::load(corpus).value();
  simdjson::dom::array entries = corpus_parser.parse(corpus_text);
  ASSERT_EQ(verdicts.size(), entries.size());
  ASSERT_GE(entries.size(), 60u);
  // Limits are tally's own (graphql-js has none): lift them for the comparison.
  ValidationOptions unlimited;
  unlimited.max_depth = 1000;
  unlimited.max_complexity = int64_t{1} << 50;
  size_t valid = 0, invalid = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string name(std::string_view(entries.at(i)["name"]));
    const std::string query(std::string_view(entries.at(i)["query"]));
    SCOPED_TRACE(name + ": " + query);
    simdjson::dom::element want = verdicts.at(i);
    std::set<std::string> js_rules;
    for (std::string_view r : simdjson::dom::array(want["rules"])) js_rules.insert(std::string(r));
    std::string js_messages;
    for (std::string_view m : simdjson::dom::array(want["messages"])) {
      js_messages += "\n  " + std::string(m);
    }
    const std::vector<GraphQLError> ours = ValidateText(query, unlimited);
    std::string our_messages;
    for (const GraphQLError& e : ours) our_messages += "\n  " + e.rule + ": " + e.message;
    const bool js_valid = bool(want["valid"]);
    EXPECT_EQ(ours.empty(), js_valid) << "graphql-js:" << js_messages << "\ntally:" << our_messages;
    EXPECT_EQ(Rules(ours), js_rules) << "graphql-js:" << js_messages << "\ntally:" << our_messages;
    (js_valid ? valid : invalid)++;
  }
  EXPECT_GE(valid, 20u);
  EXPECT_GE(invalid, 40u);
  fs::remove_all(dir);
}

// ---- tally's schema ---------------------------------------------------------------------------

TEST(GraphQLTallySchema, HasTheDocumentedRootFieldsAndNoMutations) {
  const Schema& s = TallySchema();
  const TypeDef* q = s.QueryType();
  ASSERT_NE(q, nullptr);
  for (const char* f : {"subscriber", "subscribers", "metrics", "query", "experiments"}) {
    EXPECT_NE(q->FindField(f), nullptr) << f;
  }
  EXPECT_EQ(s.FindType("Mutation"), nullptr);
  const std::string sdl = s.PrintSdl();
  EXPECT_NE(
      sdl.find("  subscriber(\n    \"\"\"The subscriber id.\"\"\"\n    id: ID!\n  ): Subscriber"),
      std::string::npos)
      << sdl;
  EXPECT_NE(sdl.find("granularity: Granularity = DAY"), std::string::npos);
  EXPECT_EQ(sdl.find("type Mutation"), std::string::npos);
}

// fuzz/graphql_fuzzer.cpp validates against the schema built without resolvers, so that its build
// needs only the metric catalogue: it must be the served schema, type for type and field for
// field, and only the resolvers may differ.
TEST(GraphQLTallySchema, WithoutResolversPrintsTheServedSdl) {
  const std::unique_ptr<Schema> types_only = BuildTallySchemaTypes(MetricCatalogue::Builtin());
  EXPECT_EQ(types_only->PrintSdl(), TallySchema().PrintSdl());
  const std::pair<const char*, const char*> computed[] = {
      {"Query", "subscriber"},   {"Query", "subscribers"},  {"Query", "metrics"},
      {"Query", "query"},        {"Query", "experiments"},  {"Subscriber", "usage"},
      {"Subscriber", "summary"}, {"Subscriber", "account"}, {"Subscriber", "invoices"}};
  for (auto [type, field] : computed) {
    const FieldDef* served = TallySchema().FindType(type)->FindField(field);
    const FieldDef* unresolved = types_only->FindType(type)->FindField(field);
    ASSERT_NE(served, nullptr) << type << "." << field;
    ASSERT_NE(unresolved, nullptr) << type << "." << field;
    EXPECT_TRUE(served->resolve) << type << "." << field << " is served without its resolver";
    EXPECT_FALSE(unresolved->resolve) << type << "." << field;
  }
}

}  // namespace
}  // namespace tally::graphql
