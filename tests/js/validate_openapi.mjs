// Validates an OpenAPI document with swagger-parser (schema and semantic checks, $refs resolved).
// Usage: node validate_openapi.mjs FILE   -> prints "valid" and exits 0, or the error and exits 1.
import SwaggerParser from "@apidevtools/swagger-parser";

const file = process.argv[2];
try {
  const api = await SwaggerParser.validate(file);
  console.log(`valid: ${api.info.title} ${api.info.version}, ${Object.keys(api.paths).length} paths`);
} catch (err) {
  console.error(`invalid: ${err.message}`);
  process.exit(1);
}
