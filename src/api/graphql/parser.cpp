#include "api/graphql/parser.h"

#include "api/graphql/lexer.h"
#include "core/utf8.h"

namespace tally::graphql {

namespace {

bool IsSdlKeyword(std::string_view name) {
  return name == "schema" || name == "scalar" || name == "type" || name == "interface" ||
         name == "union" || name == "enum" || name == "input" || name == "directive" ||
         name == "extend";
}

bool IsOperationKeyword(std::string_view name) {
  return name == "query" || name == "mutation" || name == "subscription";
}

// Recursive descent over the token stream. Every method returns false once an error is recorded;
// callers return at once, so the first error is the one reported.
class Parser {
 public:
  Parser(std::string_view source, const ParseOptions& options) : lex_(source), options_(options) {}

  bool Start() { return Advance(); }

  bool ParseDocument(Document* doc) {
    if (tok_.kind == TokenKind::kEof) return Unexpected();
    while (tok_.kind != TokenKind::kEof) {
      if (!ParseDefinition(doc)) return false;
    }
    return true;
  }

  bool ParseType(TypeRef* out) {
    if (!Enter()) return false;
    const Location at = tok_.loc;
    if (tok_.kind == TokenKind::kBracketL) {
      if (!Advance()) return false;
      TypeRef inner;
      if (!ParseType(&inner)) return false;
      if (!Expect(TokenKind::kBracketR)) return false;
      *out = TypeRef::Wrap(TypeRef::Kind::kList, std::move(inner));
    } else {
      std::string name;
      if (!ExpectName(&name)) return false;
      *out = TypeRef::Named(std::move(name));
    }
    out->loc = at;
    if (tok_.kind == TokenKind::kBang) {
      if (!Advance()) return false;
      *out = TypeRef::Wrap(TypeRef::Kind::kNonNull, std::move(*out));
      out->loc = at;
    }
    --depth_;
    return true;
  }

  bool ParseValue(bool is_const, AstValue* out) {
    if (!Enter()) return false;
    out->loc = tok_.loc;
    switch (tok_.kind) {
      case TokenKind::kBracketL: {
        out->kind = AstValue::Kind::kList;
        if (!Advance()) return false;
        while (tok_.kind != TokenKind::kBracketR) {
          if (tok_.kind == TokenKind::kEof) return Expect(TokenKind::kBracketR);
          out->items.emplace_back();
          if (!ParseValue(is_const, &out->items.back())) return false;
        }
        if (!Advance()) return false;
        break;
      }
      case TokenKind::kBraceL: {
        out->kind = AstValue::Kind::kObject;
        if (!Advance()) return false;
        while (tok_.kind != TokenKind::kBraceR) {
          out->name_locs.push_back(tok_.loc);
          out->names.emplace_back();
          if (!ExpectName(&out->names.back()) || !Expect(TokenKind::kColon)) return false;
          out->items.emplace_back();
          if (!ParseValue(is_const, &out->items.back())) return false;
        }
        if (!Advance()) return false;
        break;
      }
      case TokenKind::kInt:
      case TokenKind::kFloat:
        out->kind = tok_.kind == TokenKind::kInt ? AstValue::Kind::kInt : AstValue::Kind::kFloat;
        out->text = tok_.value;
        if (!Advance()) return false;
        break;
      case TokenKind::kString:
      case TokenKind::kBlockString:
        out->kind = AstValue::Kind::kString;
        out->block = tok_.kind == TokenKind::kBlockString;
        out->text = tok_.value;
        if (!Advance()) return false;
        break;
      case TokenKind::kName:
        if (tok_.value == "true" || tok_.value == "false") {
          out->kind = AstValue::Kind::kBoolean;
        } else if (tok_.value == "null") {
          out->kind = AstValue::Kind::kNull;
        } else {
          out->kind = AstValue::Kind::kEnum;
        }
        out->text = tok_.value;
        if (!Advance()) return false;
        break;
      case TokenKind::kDollar:
        if (is_const) {
          const Location at = tok_.loc;
          if (!Advance()) return false;
          if (tok_.kind == TokenKind::kName) {
            return Fail(at, "Unexpected variable \"$" + tok_.value + "\" in constant value.");
          }
          return Fail(at, "Unexpected \"$\".");
        }
        out->kind = AstValue::Kind::kVariable;
        if (!Advance() || !ExpectName(&out->text)) return false;
        break;
      default:
        return Unexpected();
    }
    --depth_;
    return true;
  }

  bool AtEnd() const { return tok_.kind == TokenKind::kEof; }
  bool Unexpected() {
    if (tok_.kind == TokenKind::kError) return false;
    return Fail(tok_.loc, "Unexpected " + Describe(tok_) + ".");
  }
  const std::optional<GraphQLError>& error() const { return error_; }

 private:
  bool Fail(Location at, std::string message) {
    if (!error_) {
      GraphQLError e;
      e.message = message.starts_with("Syntax Error: ") ? std::move(message)
                                                        : "Syntax Error: " + std::move(message);
      e.locations.push_back(at);
      e.rule = "Syntax";
      error_ = std::move(e);
    }
    return false;
  }
  bool Advance() {
    tok_ = lex_.Next();
    if (tok_.kind == TokenKind::kError) return Fail(lex_.error_loc(), lex_.error());
    return true;
  }
  bool Enter() {
    if (++depth_ > options_.max_nesting) {
      return Fail(tok_.loc, "Document nests deeper than " + std::to_string(options_.max_nesting) +
                                " levels.");
    }
    return true;
  }
  bool Expect(TokenKind kind) {
    if (tok_.kind == kind) return Advance();
    if (tok_.kind == TokenKind::kError) return false;
    const std::string want = kind == TokenKind::kName ? std::string(Describe(kind))
                                                      : "\"" + std::string(Describe(kind)) + "\"";
    return Fail(tok_.loc, "Expected " + want + ", found " + Describe(tok_) + ".");
  }
  bool ExpectName(std::string* out) {
    if (tok_.kind != TokenKind::kName) return Expect(TokenKind::kName);
    *out = tok_.value;
    return Advance();
  }
  bool ExpectKeyword(std::string_view word) {
    if (tok_.kind == TokenKind::kName && tok_.value == word) return Advance();
    if (tok_.kind == TokenKind::kError) return false;
    return Fail(tok_.loc, "Expected \"" + std::string(word) + "\", found " + Describe(tok_) + ".");
  }

  bool ParseDefinition(Document* doc) {
    if (tok_.kind == TokenKind::kBraceL) {
      OperationDefinition op;
      op.loc = tok_.loc;
      if (!ParseSelectionSet(&op.selection_set)) return false;
      doc->operations.push_back(std::move(op));
      return true;
    }
    const bool described = tok_.kind == TokenKind::kString || tok_.kind == TokenKind::kBlockString;
    if (described || (tok_.kind == TokenKind::kName && IsSdlKeyword(tok_.value))) {
      return SkipTypeSystemDefinition(doc);
    }
    if (tok_.kind != TokenKind::kName) return Unexpected();
    if (IsOperationKeyword(tok_.value)) return ParseOperation(doc);
    if (tok_.value == "fragment") return ParseFragment(doc);
    return Unexpected();
  }

  bool ParseOperation(Document* doc) {
    OperationDefinition op;
    op.loc = tok_.loc;
    op.type = tok_.value == "query"      ? OperationType::kQuery
              : tok_.value == "mutation" ? OperationType::kMutation
                                         : OperationType::kSubscription;
    if (!Advance()) return false;
    if (tok_.kind == TokenKind::kName && !ExpectName(&op.name)) return false;
    if (tok_.kind == TokenKind::kParenL) {
      if (!Advance()) return false;
      do {
        VariableDefinition v;
        v.loc = tok_.loc;
        if (!Expect(TokenKind::kDollar) || !ExpectName(&v.name) || !Expect(TokenKind::kColon) ||
            !ParseType(&v.type)) {
          return false;
        }
        if (tok_.kind == TokenKind::kEquals) {
          if (!Advance()) return false;
          v.default_value.emplace();
          if (!ParseValue(true, &*v.default_value)) return false;
        }
        if (!ParseDirectives(true, &v.directives)) return false;
        op.variables.push_back(std::move(v));
      } while (tok_.kind != TokenKind::kParenR);
      if (!Advance()) return false;
    }
    if (!ParseDirectives(false, &op.directives)) return false;
    if (!ParseSelectionSet(&op.selection_set)) return false;
    doc->operations.push_back(std::move(op));
    return true;
  }

  bool ParseFragment(Document* doc) {
    FragmentDefinition f;
    f.loc = tok_.loc;
    if (!Advance()) return false;
    if (tok_.kind == TokenKind::kName && tok_.value == "on") return Unexpected();
    if (!ExpectName(&f.name) || !ExpectKeyword("on")) return false;
    f.type_condition_loc = tok_.loc;
    if (!ExpectName(&f.type_condition)) return false;
    if (!ParseDirectives(false, &f.directives)) return false;
    if (!ParseSelectionSet(&f.selection_set)) return false;
    doc->fragments.push_back(std::move(f));
    return true;
  }

  bool ParseSelectionSet(SelectionSet* out) {
    if (!Enter()) return false;
    out->loc = tok_.loc;
    if (!Expect(TokenKind::kBraceL)) return false;
    do {
      out->items.emplace_back();
      if (!ParseSelection(&out->items.back())) return false;
    } while (tok_.kind != TokenKind::kBraceR);
    if (!Advance()) return false;
    --depth_;
    return true;
  }

  bool ParseSelection(Selection* s) {
    s->loc = tok_.loc;
    if (tok_.kind == TokenKind::kSpread) {
      if (!Advance()) return false;
      if (tok_.kind == TokenKind::kName && tok_.value != "on") {
        s->kind = Selection::Kind::kFragmentSpread;
        if (!ExpectName(&s->name)) return false;
        return ParseDirectives(false, &s->directives);
      }
      s->kind = Selection::Kind::kInlineFragment;
      if (tok_.kind == TokenKind::kName) {  // "on"
        if (!Advance()) return false;
        s->type_condition_loc = tok_.loc;
        if (!ExpectName(&s->type_condition)) return false;
      }
      if (!ParseDirectives(false, &s->directives)) return false;
      s->has_selection_set = true;
      return ParseSelectionSet(&s->selection_set);
    }
    s->kind = Selection::Kind::kField;
    if (!ExpectName(&s->name)) return false;
    if (tok_.kind == TokenKind::kColon) {
      if (!Advance()) return false;
      s->alias = std::move(s->name);
      s->name.clear();
      if (!ExpectName(&s->name)) return false;
    }
    if (!ParseArguments(false, &s->args)) return false;
    if (!ParseDirectives(false, &s->directives)) return false;
    if (tok_.kind == TokenKind::kBraceL) {
      s->has_selection_set = true;
      return ParseSelectionSet(&s->selection_set);
    }
    return true;
  }

  bool ParseArguments(bool is_const, std::vector<Argument>* out) {
    if (tok_.kind != TokenKind::kParenL) return true;
    if (!Advance()) return false;
    do {
      Argument a;
      a.loc = tok_.loc;
      if (!ExpectName(&a.name) || !Expect(TokenKind::kColon)) return false;
      if (!ParseValue(is_const, &a.value)) return false;
      out->push_back(std::move(a));
    } while (tok_.kind != TokenKind::kParenR);
    return Advance();
  }

  bool ParseDirectives(bool is_const, std::vector<Directive>* out) {
    while (tok_.kind == TokenKind::kAt) {
      Directive d;
      d.loc = tok_.loc;
      if (!Advance() || !ExpectName(&d.name)) return false;
      if (!ParseArguments(is_const, &d.args)) return false;
      out->push_back(std::move(d));
    }
    return true;
  }

  // A type-system definition is not executable; validation reports it by name. Its tokens are
  // consumed up to the end of its body: the first {...} group of types, inputs, enums and
  // schemas, or the next definition for scalars, unions and directives.
  bool SkipTypeSystemDefinition(Document* doc) {
    TypeSystemDefinition def;
    def.loc = tok_.loc;
    if (tok_.kind == TokenKind::kString || tok_.kind == TokenKind::kBlockString) {
      if (!Advance()) return false;
      if (tok_.kind != TokenKind::kName || !IsSdlKeyword(tok_.value) || tok_.value == "extend") {
        return Unexpected();
      }
    }
    std::string keyword = tok_.value;
    if (!Advance()) return false;
    if (keyword == "extend") {
      if (tok_.kind != TokenKind::kName || !IsSdlKeyword(tok_.value) || tok_.value == "extend") {
        return Unexpected();
      }
      keyword = tok_.value;
      if (!Advance()) return false;
    }
    if (keyword == "directive") {
      if (!Expect(TokenKind::kAt)) return false;
      if (!ExpectName(&def.name)) return false;
      // graphql-js names a directive definition without its @.
    } else if (keyword != "schema") {
      if (!ExpectName(&def.name)) return false;
    }
    const bool braced = keyword != "scalar" && keyword != "union" && keyword != "directive";
    int depth = 0;
    for (;;) {
      const TokenKind k = tok_.kind;
      if (k == TokenKind::kEof) break;
      if (depth == 0 &&
          (k == TokenKind::kString || k == TokenKind::kBlockString ||
           (k == TokenKind::kName && (IsSdlKeyword(tok_.value) || IsOperationKeyword(tok_.value) ||
                                      tok_.value == "fragment")) ||
           (k == TokenKind::kBraceL && !braced))) {
        break;
      }
      if (k == TokenKind::kBraceL || k == TokenKind::kParenL || k == TokenKind::kBracketL) {
        if (++depth > options_.max_nesting) return Enter();
      }
      if (k == TokenKind::kBraceR || k == TokenKind::kParenR || k == TokenKind::kBracketR) {
        if (--depth < 0) return Unexpected();
      }
      if (!Advance()) return false;
      if (braced && depth == 0 && k == TokenKind::kBraceR) break;
    }
    if (depth != 0) return Unexpected();
    doc->type_system.push_back(std::move(def));
    return true;
  }

  Lexer lex_;
  ParseOptions options_;
  Token tok_;
  int depth_ = 0;
  std::optional<GraphQLError> error_;
};

}  // namespace

ParseResult Parse(std::string_view source, const ParseOptions& options) {
  ParseResult r;
  auto fail = [&](std::string message, Location at) {
    GraphQLError e;
    e.message = std::move(message);
    e.locations.push_back(at);
    e.rule = "Syntax";
    r.error = std::move(e);
    return std::move(r);
  };
  if (source.size() > options.max_bytes) {
    return fail("Syntax Error: the document is " + std::to_string(source.size()) +
                    " bytes; the limit is " + std::to_string(options.max_bytes) + " bytes.",
                {1, 1});
  }
  if (const size_t bad = FindInvalidUtf8(source); bad != std::string_view::npos) {
    int line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i < bad; ++i) {
      if (source[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    int column = 1;
    for (size_t i = line_start; i < bad; ++i) {
      if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) ++column;
    }
    return fail("Syntax Error: invalid UTF-8 at byte " + std::to_string(bad) + ".", {line, column});
  }
  Parser p(source, options);
  if (!p.Start() || !p.ParseDocument(&r.document)) {
    r.error = p.error();
    r.document = Document();
  }
  return r;
}

std::optional<TypeRef> ParseTypeRef(std::string_view source) {
  Parser p(source, ParseOptions{});
  TypeRef t;
  if (!p.Start() || !p.ParseType(&t) || !p.AtEnd()) return std::nullopt;
  return t;
}

std::optional<AstValue> ParseConstValue(std::string_view source) {
  Parser p(source, ParseOptions{});
  AstValue v;
  if (!p.Start() || !p.ParseValue(true, &v) || !p.AtEnd()) return std::nullopt;
  return v;
}

}  // namespace tally::graphql
