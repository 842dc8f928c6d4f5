// Parse an AsyncAPI document with the official parser (@asyncapi/parser) and print what it found as JSON:
// {"parsed": bool, "channels": n, "operations": n, "messages": n, "errors": [...], "warnings": n}.
// Usage: node parse_asyncapi.js DOCUMENT.json (the parser is resolved from this folder's node_modules).
"use strict";
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

async function main() {
  const text = fs.readFileSync(process.argv[2], "utf8");
  const { document, diagnostics } = await new Parser().parse(text);
  const errors = diagnostics.filter((d) => d.severity === 0);
  const summary = {
    parsed: Boolean(document),
    channels: document ? document.channels().length : 0,
    operations: document ? document.operations().length : 0,
    messages: document ? document.components().messages().length : 0,
    errors: errors.map((d) => ({ code: d.code, path: d.path.join("/"), message: d.message })),
    warnings: diagnostics.filter((d) => d.severity === 1).length,
  };
  process.stdout.write(JSON.stringify(summary) + "\n");
}

main().catch((error) => {
  process.stderr.write(String((error && error.stack) || error) + "\n");
  process.exit(2);
});
