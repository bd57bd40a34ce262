#include "api/graphql/ast.h"

#include <cstdio>

namespace tally::graphql {

std::string TypeRef::ToString() const {
  switch (kind) {
    case Kind::kNamed:
      return name;
    case Kind::kList:
      return "[" + of->ToString() + "]";
    case Kind::kNonNull:
      return of->ToString() + "!";
  }
  return name;
}

bool operator==(const TypeRef& a, const TypeRef& b) {
  if (a.kind != b.kind) return false;
  if (a.kind == TypeRef::Kind::kNamed) return a.name == b.name;
  return *a.of == *b.of;
}

std::string_view Name(OperationType t) {
  switch (t) {
    case OperationType::kQuery:
      return "query";
    case OperationType::kMutation:
      return "mutation";
    case OperationType::kSubscription:
      return "subscription";
  }
  return "query";
}

namespace {

void PrintString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04X", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

void Print(std::string& out, const AstValue& v) {
  switch (v.kind) {
    case AstValue::Kind::kVariable:
      out += '$';
      out += v.text;
      return;
    case AstValue::Kind::kInt:
    case AstValue::Kind::kFloat:
    case AstValue::Kind::kBoolean:
    case AstValue::Kind::kEnum:
      out += v.text;
      return;
    case AstValue::Kind::kNull:
      out += "null";
      return;
    case AstValue::Kind::kString:
      if (v.block) {
        out += "\"\"\"";
        for (size_t i = 0; i < v.text.size(); ++i) {
          if (v.text.compare(i, 3, "\"\"\"") == 0) out += '\\';
          out += v.text[i];
        }
        out += "\"\"\"";
      } else {
        PrintString(out, v.text);
      }
      return;
    case AstValue::Kind::kList:
      out += '[';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ", ";
        Print(out, v.items[i]);
      }
      out += ']';
      return;
    case AstValue::Kind::kObject:
      out += '{';
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i) out += ", ";
        out += v.names[i];
        out += ": ";
        Print(out, v.items[i]);
      }
      out += '}';
      return;
  }
}

}  // namespace

std::string PrintValue(const AstValue& value) {
  std::string out;
  Print(out, value);
  return out;
}

}  // namespace tally::graphql
