// graphql-js (the GraphQL reference implementation) as the oracle for tally's GraphQL tests
// (tests/unit/graphql_test.cpp):
//
//   node graphql_reference.mjs introspection-query [full]
//       prints graphql-js's standard introspection query (GraphiQL's; `full` asks for every
//       optional part: specifiedByURL, isRepeatable, schema description, input deprecation,
//       isOneOf)
//   node graphql_reference.mjs compare-schema SDL_FILE INTROSPECTION_RESULT_FILE
//       builds the SDL with buildSchema() and the introspection result with buildClientSchema(),
//       and checks that printSchema() of both is the same text, and that the SDL is exactly as
//       printSchema() prints it; prints "schemas equal" and exits 0, else the difference and 1
//   node graphql_reference.mjs validate SDL_FILE CORPUS_FILE
//       prints, as JSON, for every {name, query} of the corpus graphql-js's verdict: valid, the
//       rules its errors come from (by message) and the messages; a syntax error is rule Syntax
import { readFileSync } from 'node:fs';
import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  parse,
  printSchema,
  validate,
} from 'graphql';

// graphql-js errors carry no rule name: the rule is recognised by its message.
const kRules = [
  ['ExecutableDefinitions', /definition is not executable/],
  ['UniqueOperationNames', /^There can be only one operation named/],
  ['LoneAnonymousOperation', /anonymous operation must be the only defined operation/],
  ['KnownTypeNames', /^Unknown type "/],
  ['FragmentsOnCompositeTypes', /cannot condition on non composite type/],
  ['VariablesAreInputTypes', /cannot be non-input type/],
  ['ScalarLeafs', /must not have a selection since type|must have a selection of subfields/],
  ['FieldsOnCorrectType', /^Cannot query field/],
  ['UniqueFragmentNames', /^There can be only one fragment named/],
  ['KnownFragmentNames', /^Unknown fragment "/],
  ['NoUnusedFragments', /^Fragment ".*" is never used/],
  ['PossibleFragmentSpreads', /cannot be spread here as objects of type/],
  ['NoFragmentCycles', /^Cannot spread fragment .* within itself/],
  ['UniqueVariableNames', /^There can be only one variable named/],
  ['NoUndefinedVariables', /^Variable ".*" is not defined/],
  ['NoUnusedVariables', /^Variable ".*" is never used/],
  ['KnownDirectives', /^Unknown directive|^Directive ".*" may not be used on/],
  ['UniqueDirectivesPerLocation', /can only be used once at this location/],
  ['KnownArgumentNames', /^Unknown argument/],
  ['UniqueArgumentNames', /^There can be only one argument named/],
  ['ProvidedRequiredArguments', /argument ".*" of type ".*" is required, but it was not provided/],
  ['VariablesInAllowedPosition', /used in position expecting type/],
  ['OverlappingFieldsCanBeMerged', /^Fields ".*" conflict because/],
  ['UniqueInputFieldNames', /^There can be only one input field named/],
  ['MaxIntrospectionDepth', /Maximum introspection depth exceeded/],
  [
    'ValuesOfCorrectType',
    /^Expected value of type|cannot represent|does not exist in ".*" enum|is not defined by type|of required type .* was not provided/,
  ],
];

function ruleOf(message) {
  for (const [rule, re] of kRules) if (re.test(message)) return rule;
  return 'Other';
}

const [command, ...args] = process.argv.slice(2);
if (command === 'introspection-query') {
  const full = args[0] === 'full';
  process.stdout.write(
    getIntrospectionQuery(
      full
        ? {
            descriptions: true,
            specifiedByUrl: true,
            directiveIsRepeatable: true,
            schemaDescription: true,
            inputValueDeprecation: true,
            oneOf: true,
          }
        : {},
    ),
  );
} else if (command === 'compare-schema') {
  const sdl = readFileSync(args[0], 'utf8');
  const result = JSON.parse(readFileSync(args[1], 'utf8'));
  if (result.errors) {
    console.log('the introspection query failed: ' + JSON.stringify(result.errors));
    process.exit(1);
  }
  const fromSdl = printSchema(buildSchema(sdl));
  const fromIntrospection = printSchema(buildClientSchema(result.data));
  let ok = true;
  if (fromSdl !== fromIntrospection) {
    ok = false;
    console.log('printSchema(buildSchema(sdl)) differs from printSchema(buildClientSchema(...))');
    const a = fromSdl.split('\n');
    const b = fromIntrospection.split('\n');
    for (let i = 0; i < Math.max(a.length, b.length); ++i) {
      if (a[i] !== b[i]) {
        console.log(`line ${i + 1}:\n  sdl:           ${a[i]}\n  introspection: ${b[i]}`);
        break;
      }
    }
  }
  if (sdl.trimEnd() !== fromSdl) {
    ok = false;
    console.log("tally's SDL is not printed as printSchema() prints it");
  }
  if (ok) console.log('schemas equal');
  process.exit(ok ? 0 : 1);
} else if (command === 'validate') {
  const schema = buildSchema(readFileSync(args[0], 'utf8'));
  const corpus = JSON.parse(readFileSync(args[1], 'utf8'));
  const out = corpus.map(({ name, query }) => {
    let doc;
    try {
      doc = parse(query);
    } catch (e) {
      return { name, valid: false, rules: ['Syntax'], messages: [e.message] };
    }
    const errors = validate(schema, doc);
    const rules = [...new Set(errors.map((e) => ruleOf(e.message)))].sort();
    return { name, valid: errors.length === 0, rules, messages: errors.map((e) => e.message) };
  });
  process.stdout.write(JSON.stringify(out));
} else {
  console.error('usage: graphql_reference.mjs introspection-query|compare-schema|validate ...');
  process.exit(2);
}
