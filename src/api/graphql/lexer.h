#pragma once
// The GraphQL lexer (spec section 2.1): turns source text into tokens, skipping whitespace,
// commas and comments, and decoding strings and block strings. Lines and columns count from 1;
// columns count code points, so a multi-byte character is one column.

#include <optional>
#include <string>
#include <string_view>

#include "api/graphql/ast.h"

namespace tally::graphql {

enum class TokenKind {
  kEof,
  kBang,
  kDollar,
  kAmp,
  kParenL,
  kParenR,
  kSpread,
  kColon,
  kEquals,
  kAt,
  kBracketL,
  kBracketR,
  kBraceL,
  kPipe,
  kBraceR,
  kName,
  kInt,
  kFloat,
  kString,
  kBlockString,
  kError,  // the lexer's error is in Lexer::error()
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string value;  // names and numbers as written; strings decoded
  Location loc;
};

//! `kind` as graphql-js names it in messages: "Name", "{", "<EOF>", ...
std::string_view Describe(TokenKind kind);
//! The token as graphql-js quotes it in "Expected X, found Y": `Name "foo"`, `"{"`, `<EOF>`.
std::string Describe(const Token& token);

class Lexer {
 public:
  //! `source` must outlive the lexer and be valid UTF-8 (the parser checks).
  explicit Lexer(std::string_view source) : src_(source) {}

  //! The next token; kError with error() set on a lexical error, kEof at the end.
  Token Next();
  const std::string& error() const { return error_; }
  Location error_loc() const { return error_loc_; }

 private:
  Token Fail(Location at, std::string message);
  Location Here() const { return {line_, static_cast<int>(CodePointsSince(line_start_)) + 1}; }
  size_t CodePointsSince(size_t from) const;
  void Advance(size_t n) { pos_ += n; }
  void NewLine(size_t after) {
    ++line_;
    line_start_ = after;
  }
  Token ReadNumber(Location at);
  Token ReadString(Location at);
  Token ReadBlockString(Location at);

  std::string_view src_;
  size_t pos_ = 0;
  int line_ = 1;
  size_t line_start_ = 0;
  std::string error_;
  Location error_loc_;
};

//! The value of a block string's raw text (spec BlockStringValue): common indentation removed,
//! leading and trailing blank lines dropped.
std::string BlockStringValue(std::string_view raw);

}  // namespace tally::graphql
