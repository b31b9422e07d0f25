// Parameters: a function's parameter names (from its source), the JSON Schema the host
// checks parameters against, and the conversions between a call's positional arguments
// and the JSON object of parameters keyed by name that crosses to the host.

/** The parameters of `fn`: `[{ name, hasDefault }]`, read from its source. */
export function parameterNames(fn) {
  const source = Function.prototype.toString.call(fn);
  const list = parameterList(source);
  if (list === null) {
    throw new TypeError(`cannot read the parameters of ${fn.name || "an anonymous function"}`);
  }
  const out = [];
  for (const raw of splitTopLevel(list)) {
    const text = stripComments(raw).trim();
    if (text === "") continue;
    if (text.startsWith("...")) {
      throw new TypeError(
        `${fn.name || "a function"}: a rest parameter (${text}) cannot be a flow or task parameter: ` +
          "name each parameter",
      );
    }
    if (text.startsWith("{") || text.startsWith("[")) {
      throw new TypeError(
        `${fn.name || "a function"}: a destructured parameter cannot be a flow or task parameter ` +
          "(parameters cross to the host by name): name each parameter, as in (name, count = 1) => ...",
      );
    }
    const match = /^([A-Za-z_$][\w$]*)\s*(=)?/.exec(text);
    if (!match) throw new TypeError(`cannot read the parameter \`${text}\` of ${fn.name}`);
    out.push({ name: match[1], hasDefault: match[2] === "=" });
  }
  return out;
}

// The text between the parentheses of a function's parameter list (or the single bare
// parameter of `x => ...`).
function parameterList(source) {
  let s = source.trimStart();
  if (s.startsWith("async") && /^async[\s(]/.test(s)) s = s.slice(5).trimStart();
  const bare = /^([A-Za-z_$][\w$]*)\s*=>/.exec(s);
  if (bare) return bare[1];
  if (s.startsWith("class")) return null;
  const open = s.indexOf("(");
  if (open < 0) return null;
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || c === "'" || c === "`") {
      i = skipString(s, i);
      continue;
    }
    if (c === "/" && (s[i + 1] === "/" || s[i + 1] === "*")) {
      i = skipComment(s, i);
      continue;
    }
    if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") {
      depth--;
      if (depth === 0) return s.slice(open + 1, i);
    }
  }
  return null;
}

function skipString(s, i) {
  const quote = s[i];
  for (let j = i + 1; j < s.length; j++) {
    if (s[j] === "\\") j++;
    else if (s[j] === quote) return j;
  }
  return s.length;
}

function skipComment(s, i) {
  if (s[i + 1] === "/") {
    const end = s.indexOf("\n", i);
    return end < 0 ? s.length : end;
  }
  const end = s.indexOf("*/", i + 2);
  return end < 0 ? s.length : end + 1;
}

function splitTopLevel(list) {
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === '"' || c === "'" || c === "`") i = skipString(list, i);
    else if (c === "/" && (list[i + 1] === "/" || list[i + 1] === "*")) i = skipComment(list, i);
    else if (c === "(" || c === "[" || c === "{") depth++;
    else if (c === ")" || c === "]" || c === "}") depth--;
    else if (c === "," && depth === 0) {
      parts.push(list.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(list.slice(start));
  return parts;
}

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/[^\n]*/g, "");
}

/**
 * The JSON Schema of the parameters: an object keyed by parameter name, each property
 * the schema given in `declared` (the `parameters` option) or any value, the parameters
 * without a default required, no others allowed.
 */
export function parametersSchema(params, declared, what) {
  const known = new Set(params.map((p) => p.name));
  for (const name of Object.keys(declared ?? {})) {
    if (!known.has(name)) {
      throw new TypeError(
        `${what}: \`parameters\` describes \`${name}\`, which is not a parameter of the function ` +
          `(it has: ${[...known].join(", ") || "none"})`,
      );
    }
  }
  const properties = {};
  const required = [];
  for (const { name, hasDefault } of params) {
    const schema = declared?.[name] ?? {};
    if (typeof schema !== "object" || schema === null || Array.isArray(schema)) {
      throw new TypeError(`${what}: the schema of parameter \`${name}\` must be a JSON Schema object`);
    }
    properties[name] = schema;
    if (!hasDefault && !("default" in schema)) required.push(name);
  }
  const out = { type: "object", properties, additionalProperties: false };
  if (required.length) out.required = required;
  return out;
}

/** A call's positional arguments as parameters keyed by name (`undefined` ones left out). */
export function bind(params, args, what) {
  if (args.length > params.length) {
    throw new TypeError(`${what}() takes ${params.length} argument(s), not ${args.length}`);
  }
  const out = {};
  params.forEach(({ name }, i) => {
    if (args[i] !== undefined) out[name] = args[i];
  });
  return out;
}

/** Parameters keyed by name as positional arguments (missing ones `undefined`, so the
 * function's defaults apply). */
export function positional(params, values) {
  return params.map(({ name }) => values[name]);
}
