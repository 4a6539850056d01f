/**
 * Environment references in config values, as LiteLLM writes them: a whole value
 * `os.environ/NAME`, or `${NAME}` anywhere inside a string.
 */
export type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const WHOLE = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/;
const EMBEDDED = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces environment references throughout a parsed YAML tree. A reference to an unset
 * variable makes the value absent (so optional keys such as `aws_session_token` may point
 * at variables that are not set); a required key then fails validation, and `unset` tells
 * which variable was missing so the error can say so.
 */
export function substituteEnv(
  value: unknown,
  env: Env,
  unset: Map<string, string>,
  path = "",
): unknown {
  if (typeof value === "string") {
    const whole = WHOLE.exec(value.trim());
    if (whole) {
      const name = whole[1]!;
      const v = env[name];
      if (v === undefined || v === "") unset.set(path, name);
      return v === "" ? undefined : v;
    }
    let missing: string | undefined;
    const replaced = value.replace(EMBEDDED, (_m, name: string) => {
      const v = env[name];
      if (v === undefined) missing = name;
      return v ?? "";
    });
    if (missing !== undefined) {
      unset.set(path, missing);
      return undefined;
    }
    return replaced;
  }
  if (Array.isArray(value))
    return value.map((v, i) => substituteEnv(v, env, unset, `${path}[${i}]`));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const sub = substituteEnv(v, env, unset, path === "" ? k : `${path}.${k}`);
      if (sub !== undefined) out[k] = sub;
    }
    return out;
  }
  return value;
}
